//! One dispatch site (`Launch`: a pipeline, its bind group and uniform) and the pass that records it, timed
//! per dispatch when a profiler is attached.

use crate::gpu::profile::{Cost, Profiler};
use crate::gpu::shader::{Resources, Shader};
use crate::gpu::{Gpu, Kernel};
use bytemuck::Pod;
use std::any::TypeId;
use std::cell::RefCell;

/// One dispatch site: a pipeline, its bind group and its uniform, built once and encoded many times.
pub struct Launch {
    pub name: &'static str,
    pipeline_kernel: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    params: wgpu::Buffer,
    /// The last parameters written, kept so that a profiler can price each dispatch (`cost::of`).
    last_params: RefCell<Vec<u8>>,
    /// The shader's uniform type; `set` checks it, since a launch no longer carries its shader's type.
    params_type: TypeId,
    dim: u32,
    cost: CostFn,
}

impl Launch {
    /// The uniform is created here and bound after the shader's `bindings`.
    pub fn new<S: Shader>(
        gpu: &Gpu,
        kernel: &Kernel<S>,
        label: &str,
        bindings: S::Bindings<'_>,
        params: &S::Params,
    ) -> Self {
        let uniform = gpu.uniform(label, params);
        let mut resources = bindings.resources();
        resources.push(uniform.as_entire_binding());
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .into_iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
            })
            .collect();
        let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &kernel.pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Self {
            name: kernel.name,
            pipeline_kernel: kernel.pipeline.clone(),
            group,
            params: uniform,
            last_params: RefCell::new(bytemuck::bytes_of(params).to_vec()),
            params_type: TypeId::of::<S::Params>(),
            dim: kernel.dim,
            cost: kernel.cost,
        }
    }

    /// New parameters; they take effect at the next `queue.submit` (one submit per step). Parameters equal
    /// to the last ones written are not written again: most steps repeat them, and every queue write costs a
    /// staging allocation (which dominated epochs of thousands of steps).
    pub fn set<P: Pod>(&self, gpu: &Gpu, params: &P) {
        assert!(
            TypeId::of::<P>() == self.params_type,
            "{}: parameters of another shader",
            self.name
        );
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

/// FLOPs and bytes of one dispatch of the named kernel, from its parameters and D.
pub type CostFn = fn(&str, &[u8], u32) -> Cost;
