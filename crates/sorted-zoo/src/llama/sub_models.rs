//! Every sub-model a loaded decoder can run (any depth, query heads in multiples of its KV heads,
//! any SwiGLU width), and reading one from its text form `L<layers>-H<query heads>-F<SwiGLU
//! units>`.

use burn::prelude::*;
use sorted_nn::{SpecError, TransformerSpace, TransformerSpaceConfig, TransformerSubModel};

use super::SortedLlama;

/// Why [`LlamaSubModels::parse`] refused a text.
#[derive(Debug, thiserror::Error)]
pub enum LlamaSubModelError {
    /// Not of the form `L<layers>-H<query heads>-F<SwiGLU units>`.
    #[error(
        "`{text}`: expected `L<layers>-H<query heads>-F<SwiGLU units>` (any axis may be left out), e.g. L20-H6-F768"
    )]
    Syntax {
        /// The text.
        text: String,
    },
    /// A size the decoder cannot run; `fits` says what it can.
    #[error("`{text}`: {fits}")]
    DoesNotFit {
        /// The text.
        text: String,
        /// What the decoder runs, in words.
        fits: String,
    },
    /// The decoder's own sizes make no sub-model space (a zero size).
    #[error(transparent)]
    Space(#[from] SpecError),
}

/// The sizes that bound a decoder's sub-models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LlamaSubModels {
    /// Layers of the full model.
    pub n_layers: usize,
    /// Query heads per layer of the full model (the allocated ones).
    pub heads: usize,
    /// SwiGLU units per layer of the full model (the allocated ones).
    pub ffn: usize,
    /// KV heads per layer (query heads are nested per KV group, so a multiple of them).
    pub kv_heads: usize,
    /// The residual width (not nested).
    pub hidden: usize,
}

impl LlamaSubModels {
    /// The bounds of `model`'s sub-models.
    ///
    /// # Panics
    /// A model without layers.
    pub fn of<B: Backend>(model: &SortedLlama<B>) -> Self {
        let l0 = model.layers.first().expect("a decoder has layers");
        LlamaSubModels {
            n_layers: model.layers.len(),
            heads: l0.num_heads,
            ffn: l0.gate.d_output_max(),
            kv_heads: l0.num_kv_heads,
            hidden: model.embedding.dims()[1],
        }
    }

    /// The query-head options: every multiple of the KV heads up to the full model's heads.
    pub fn query_heads(&self) -> Vec<usize> {
        (1..=self.heads / self.kv_heads.max(1)).map(|k| k * self.kv_heads).collect()
    }

    /// The full model as a sub-model.
    ///
    /// # Errors
    /// A zero size.
    pub fn full(&self) -> Result<TransformerSubModel, SpecError> {
        let space = TransformerSpace::new(
            TransformerSpaceConfig {
                depths: vec![self.n_layers],
                heads: vec![self.heads],
                ffn: vec![self.ffn],
                hidden: None,
            },
            self.hidden,
        )?;
        Ok(space.largest())
    }

    /// The sub-model `text` names (`L<layers>-H<query heads>-F<SwiGLU units>`, an axis left out
    /// staying full; `full` for the full model).
    ///
    /// # Errors
    /// Unreadable text, or a size the decoder cannot run (saying what fits).
    pub fn parse(&self, text: &str) -> Result<TransformerSubModel, LlamaSubModelError> {
        let heads = self.query_heads();
        let fits = format!(
            "this model runs 1..={} layers, query heads {heads:?} (multiples of its {} KV heads) and 1..={} SwiGLU \
             units",
            self.n_layers, self.kv_heads, self.ffn
        );
        // The space's own parser reads the text; its error would list every SwiGLU width, so a
        // refusal says what fits instead.
        let space = TransformerSpace::new(
            TransformerSpaceConfig {
                depths: (1..=self.n_layers).collect(),
                heads,
                ffn: (1..=self.ffn).collect(),
                hidden: None,
            },
            self.hidden,
        )?;
        space.parse_sub_model(text).map_err(|e| match e {
            SpecError::Parse { .. } => LlamaSubModelError::Syntax { text: text.to_string() },
            _ => LlamaSubModelError::DoesNotFit { text: text.to_string(), fits },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{LlamaSubModelError, LlamaSubModels};

    #[test]
    fn sub_models_parse_with_full_axes_by_default_and_refuse_what_does_not_fit() {
        let subs = LlamaSubModels { n_layers: 30, heads: 9, ffn: 1536, kv_heads: 3, hidden: 576 };
        let sub = subs.parse("L20-H6-F768").unwrap();
        assert_eq!((sub.depth, sub.heads, sub.ffn, sub.hidden), (20, 6, 768, 576));
        assert_eq!(subs.parse("full").unwrap(), subs.full().unwrap());
        assert_eq!(subs.query_heads(), [3, 6, 9]);
        assert!(matches!(subs.parse("twenty"), Err(LlamaSubModelError::Syntax { .. })));
        assert!(matches!(subs.parse("L20-H4"), Err(LlamaSubModelError::DoesNotFit { .. })));
    }
}
