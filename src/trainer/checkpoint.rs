//! The checkpoint framing both engines share: model and optimizer bytes, the random
//! stream's position and the row order, in one little-endian byte string.

/// What a checkpoint holds: the model's and the optimizer's state (burn records for the burn
/// engine, plain f32s for the fused one), the position of the trial's random stream (batch
/// order and dropout), and the current order of the training rows (reshuffled in place each
/// epoch).
pub struct Saved {
    pub model: Vec<u8>,
    pub optim: Vec<u8>,
    pub rng_word_pos: u128,
    pub order: Vec<usize>,
}

impl Saved {
    /// `len(model) model len(optim) optim rng_word_pos len(order) order...`, little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.model.len() + self.optim.len() + 8 * self.order.len() + 48);
        for part in [&self.model, &self.optim] {
            out.extend((part.len() as u64).to_le_bytes());
            out.extend(part.iter());
        }
        out.extend(self.rng_word_pos.to_le_bytes());
        out.extend((self.order.len() as u64).to_le_bytes());
        for &i in &self.order {
            out.extend((i as u64).to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader { bytes, at: 0 };
        let n = r.len()?;
        let model = r.take(n)?.to_vec();
        let n = r.len()?;
        let optim = r.take(n)?.to_vec();
        let rng_word_pos = u128::from_le_bytes(r.take(16)?.try_into().ok()?);
        let n = r.len()?;
        let order = (0..n).map(|_| r.len()).collect::<Option<Vec<_>>>()?;
        Some(Self {
            model,
            optim,
            rng_word_pos,
            order,
        })
    }
}

/// Reads a checkpoint front to back; `None` when it ends early.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()
    }
}
