//! Integration tests of sorted-data, compiled as one binary (see house style, section 6).

mod augment;
mod batcher;
mod cifar;
mod csv;
mod epoch_order;
mod fashion_mnist;
mod idx_files;
mod mnist;
mod rt_sentiment;
mod text_batcher;
mod wordpiece;
