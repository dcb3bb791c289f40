//! Parameter shapes of a module, and loading a record only when every shape stays: burn's
//! `load_record` takes any shape, and a mismatch would only surface as a panic in a later
//! forward pass. Checkpoints (sorted-sched) and exported dense models (sorted-zoo) both load
//! records this way.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::Backend;
use burn::tensor::{Bool, Int, Tensor};

/// Every parameter's path (`layers.0.weight`) and shape of a module, in visiting order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamShapes {
    /// `(path, shape)` per parameter.
    pub shapes: Vec<(String, Vec<usize>)>,
}

/// The first parameter whose shape differs between two [`ParamShapes`] of the same module type.
/// Its message is the one checkpoints (sorted-sched) and exported dense models (sorted-zoo) show
/// after the file's path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "parameter `{param}` has shape {found:?}, the model built from the config has {expected:?} \
     (the config does not match these weights)"
)]
pub struct ShapeMismatch {
    /// The parameter's path in the module.
    pub param: String,
    /// The shape the module was built with.
    pub expected: Vec<usize>,
    /// The shape found (in the record).
    pub found: Vec<usize>,
}

impl ParamShapes {
    /// The shapes of `model`'s parameters (float, int and bool).
    pub fn of<B: Backend, M: Module<B>>(model: &M) -> Self {
        let mut visitor = ShapeVisitor { path: Vec::new(), shapes: Vec::new() };
        model.visit(&mut visitor);
        Self { shapes: visitor.shapes }
    }

    /// The first parameter whose shape in `found` differs from its shape here, if any.
    pub fn first_difference(&self, found: &ParamShapes) -> Option<ShapeMismatch> {
        self.shapes.iter().zip(&found.shapes).find(|(a, b)| a.1 != b.1).map(|(a, b)| ShapeMismatch {
            param: a.0.clone(),
            expected: a.1.clone(),
            found: b.1.clone(),
        })
    }
}

/// Loads `record` into `model`, refusing it when a parameter would change shape.
///
/// # Errors
/// The first parameter of another shape than `model` was built with.
pub fn load_record_same_shapes<B: Backend, M: Module<B>>(model: M, record: M::Record) -> Result<M, ShapeMismatch> {
    let expected = ParamShapes::of(&model);
    let model = model.load_record(record);
    match expected.first_difference(&ParamShapes::of(&model)) {
        Some(mismatch) => Err(mismatch),
        None => Ok(model),
    }
}

struct ShapeVisitor {
    path: Vec<String>,
    shapes: Vec<(String, Vec<usize>)>,
}

impl ShapeVisitor {
    fn record(&mut self, dims: Vec<usize>) {
        self.shapes.push((self.path.join("."), dims));
    }
}

impl<B: Backend> ModuleVisitor<B> for ShapeVisitor {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.record(param.lazy_shape().to_vec());
    }
    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        self.record(param.lazy_shape().to_vec());
    }
    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        self.record(param.lazy_shape().to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SortedLinearConfig;
    use burn::backend::Flex;

    #[test]
    fn a_record_of_another_shape_is_refused_naming_the_parameter() {
        let device = Default::default();
        let small = SortedLinearConfig::new(4, 3).init::<Flex>(&device);
        let large = SortedLinearConfig::new(4, 5).init::<Flex>(&device);
        assert_eq!(ParamShapes::of(&small).first_difference(&ParamShapes::of(&small.clone())), None);
        let err = load_record_same_shapes(small.clone(), large.into_record()).unwrap_err();
        assert_eq!(err.param, "weight");
        assert_eq!(
            err.to_string(),
            "parameter `weight` has shape [4, 5], the model built from the config has [4, 3] \
             (the config does not match these weights)"
        );
        assert_eq!((err.expected, err.found), (vec![4, 3], vec![4, 5]));
        load_record_same_shapes(small.clone(), small.into_record()).unwrap();
    }
}
