//! The keys and values a host-side decoder has computed, per layer, appended in place.

/// Keys (after RoPE) and values of every position seen so far, per layer, position-major:
/// position `p`'s KV head `g` is `keys[(p * kv_heads + g) * head_dim..][..head_dim]`. A new
/// position is appended at the end (no copy of the older ones, unlike concatenating tensors)
/// and rejected draft positions are dropped by [`HostKvCache::truncate`]. Layers that have not
/// run hold no positions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostKvCache {
    pub(crate) layers: Vec<LayerKv>,
    /// Values per position and layer: `kv_heads * head_dim`.
    pub(crate) width: usize,
}

/// One layer's keys and values.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LayerKv {
    pub(crate) keys: Vec<f32>,
    pub(crate) values: Vec<f32>,
}

impl HostKvCache {
    /// An empty cache for `layers` layers of `width` (`kv_heads * head_dim`) values per
    /// position.
    pub fn new(layers: usize, width: usize) -> Self {
        Self { layers: vec![LayerKv::default(); layers], width }
    }

    /// Positions cached in layer `layer` (0 if it has not run, or is out of range).
    pub fn len_of(&self, layer: usize) -> usize {
        self.layers.get(layer).map_or(0, |l| l.keys.len() / self.width.max(1))
    }

    /// Drops every cached position from `len` on, in every layer.
    pub fn truncate(&mut self, len: usize) {
        for layer in &mut self.layers {
            layer.keys.truncate(len * self.width);
            layer.values.truncate(len * self.width);
        }
    }

    /// Layer `layer`'s entry.
    ///
    /// # Panics
    /// If the cache was made for fewer layers.
    pub(crate) fn layer_mut(&mut self, layer: usize) -> &mut LayerKv {
        let layers = self.layers.len();
        self.layers.get_mut(layer).unwrap_or_else(|| panic!("HostKvCache: layer {layer} of a {layers}-layer cache"))
    }
}
