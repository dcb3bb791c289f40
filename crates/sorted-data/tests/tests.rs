//! Integration tests of sorted-data, compiled as one binary (see house style, section 6).

mod augment;
mod batcher;
mod byte_bpe;
mod chatml;
mod cifar;
mod csv;
mod epoch_order;
mod fashion_mnist;
mod gguf_metadata;
mod gguf_quants;
mod idx_files;
mod lm_chunks;
mod mnist;
mod rt_sentiment;
mod shakespeare;
mod text_batcher;
mod wordpiece;
