//! One dispatch site (`Launch`: a pipeline, its bind group and uniform) and the pass that records it, timed
//! per dispatch when a profiler is attached.

use crate::gpu::profile::{Cost, Profiler};
use crate::gpu::{Gpu, Kernel};
use bytemuck::Pod;
use std::cell::RefCell;

/// One dispatch site: a pipeline, its bind group and its uniform, built once and encoded many times.
pub struct Launch {
    pub name: &'static str,
    pipeline_kernel: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    params: wgpu::Buffer,
    /// The last parameters written, kept so that a profiler can price each dispatch (`cost::of`).
    last_params: RefCell<Vec<u8>>,
    dim: u32,
    cost: CostFn,
}

impl Launch {
    /// `buffers` are the kernel's bindings in order, without the uniform, which is appended last.
    pub fn new<P: Pod>(
        gpu: &Gpu,
        kernel: &Kernel,
        label: &str,
        buffers: &[wgpu::BindingResource],
        params: &P,
    ) -> Self {
        let uniform = gpu.uniform(label, params);
        let mut all = buffers.to_vec();
        all.push(uniform.as_entire_binding());
        let group = kernel.bind(gpu, label, &all);
        Self {
            name: kernel.name,
            pipeline_kernel: kernel.pipeline.clone(),
            group,
            params: uniform,
            last_params: RefCell::new(bytemuck::bytes_of(params).to_vec()),
            dim: kernel.dim,
            cost: kernel.cost,
        }
    }

    /// New parameters; they take effect at the next `queue.submit` (one submit per step). Parameters equal
    /// to the last ones written are not written again: most steps repeat them, and every queue write costs a
    /// staging allocation (which dominated epochs of thousands of steps).
    pub fn set<P: Pod>(&self, gpu: &Gpu, params: &P) {
        let bytes = bytemuck::bytes_of(params);
        let mut last = self.last_params.borrow_mut();
        if last.as_slice() == bytes {
            return;
        }
        gpu.queue.write_buffer(&self.params, 0, bytes);
        last.clear();
        last.extend_from_slice(bytes);
    }

    /// Work of one dispatch with the current parameters.
    pub fn cost(&self) -> Cost {
        (self.cost)(self.name, &self.last_params.borrow(), self.dim)
    }

    pub fn run(&self, pass: &mut Pass, threads: u32) {
        if threads == 0 {
            return;
        }
        let (x, y) = crate::gpu::grid(threads.div_ceil(crate::gpu::WORKGROUP));
        pass.dispatch(self, (x, y, 1));
    }

    /// Dispatches an explicit (x, y, z) grid of workgroups.
    pub fn run_groups(&self, pass: &mut Pass, (x, y, z): (u32, u32, u32)) {
        if x * y * z == 0 {
            return;
        }
        pass.dispatch(self, (x, y, z));
    }

    pub fn run_one_group(&self, pass: &mut Pass) {
        pass.dispatch(self, (1, 1, 1));
    }

    /// Records the dispatch into a wgpu pass.
    pub fn encode(&self, pass: &mut wgpu::ComputePass, (x, y, z): (u32, u32, u32)) {
        pass.set_pipeline(&self.pipeline_kernel);
        pass.set_bind_group(0, &self.group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }
}

/// A compute pass being recorded into `encoder`. Without a profiler every dispatch goes into one wgpu
/// compute pass; with one, each dispatch is timed on its own (see `Profiler::dispatch`).
pub struct Pass<'e> {
    encoder: &'e mut wgpu::CommandEncoder,
    pass: Option<wgpu::ComputePass<'static>>,
    label: &'static str,
    profiler: Option<&'e Profiler>,
}

impl<'e> Pass<'e> {
    pub fn begin(
        encoder: &'e mut wgpu::CommandEncoder,
        label: &'static str,
        profiler: Option<&'e Profiler>,
    ) -> Self {
        Self {
            encoder,
            pass: None,
            label,
            profiler,
        }
    }

    fn dispatch(&mut self, launch: &Launch, groups: (u32, u32, u32)) {
        match self.profiler {
            Some(p) => p.dispatch(self.encoder, launch.name, launch.cost(), |pass| {
                launch.encode(pass, groups)
            }),
            None => {
                let (encoder, label) = (&mut *self.encoder, self.label);
                let pass = self.pass.get_or_insert_with(|| {
                    encoder
                        .begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some(label),
                            timestamp_writes: None,
                        })
                        .forget_lifetime()
                });
                launch.encode(pass, groups);
            }
        }
    }
}

/// What each kernel does per dispatch, from its parameters (the formulas follow the shaders' loops; D is the

/// FLOPs and bytes of one dispatch of the named kernel, from its parameters and D.
pub type CostFn = fn(&str, &[u8], u32) -> Cost;
