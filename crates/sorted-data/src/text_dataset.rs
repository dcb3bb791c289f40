//! Labelled texts: one split of a text classification dataset.

/// Texts and their class labels, by index: one split of a text classification dataset such as
/// [`RtSentiment`](crate::RtSentiment).
///
/// ```
/// use sorted_data::TextDataset;
///
/// let data = TextDataset { texts: vec!["Dull.".into(), "A joy.".into(), "Fine.".into()], labels: vec![0, 1, 1] };
/// assert_eq!((data.len(), data.class_counts(2)), (3, vec![1, 2]));
/// assert_eq!(data.select(&[2, 0]).texts, ["Fine.", "Dull."]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextDataset {
    /// The texts.
    pub texts: Vec<String>,
    /// The class of each text, `labels[i]` for `texts[i]`.
    pub labels: Vec<u8>,
}

impl TextDataset {
    /// The number of texts.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are no texts.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// How many texts each of the classes `0..n_classes` has. Labels at or above `n_classes`
    /// are not counted.
    pub fn class_counts(&self, n_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; n_classes];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(usize::from(label)) {
                *count += 1;
            }
        }
        counts
    }

    /// The texts at `indices`, in that order, with their labels.
    ///
    /// # Panics
    /// If an index is out of range (a bug: indices come from `0..len()`).
    pub fn select(&self, indices: &[usize]) -> TextDataset {
        TextDataset {
            texts: indices.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}
