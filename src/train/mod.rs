//! Training: the trainer (epochs of steps on the GPU), model selection on a validation split, and the run
//! that strings train, select, refit, fine-tune, evaluate and save together.

pub mod run;
pub mod selection;
pub mod trainer;
