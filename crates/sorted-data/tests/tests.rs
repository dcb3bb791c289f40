//! Integration tests of sorted-data, compiled as one binary (see house style, section 6).

mod batcher;
mod epoch_order;
mod idx_files;
mod mnist;
