//! The WebGPU context: adapter choice, device creation, buffers, readback, and compute kernels built from
//! the WGSL files in `shaders/` with every shader error turned into a Rust error.

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use wgpu::util::DeviceExt;

pub mod batches;
pub mod launch;
pub mod profile;
pub mod shader;

use launch::CostFn;
use shader::Shader;
use std::marker::PhantomData;

/// Which adapter to use: `--backend` and `--adapter` on the command line.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    pub backend: Option<wgpu::Backends>,
    pub name_contains: Option<String>,
}

/// What we report about the adapter in tables and `--metrics-out`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver_info: String,
}

impl AdapterSummary {
    pub fn of(info: &wgpu::AdapterInfo) -> Self {
        let driver_info = [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: format!("{:?}", info.device_type),
            driver_info,
        }
    }

    pub fn is_software(&self) -> bool {
        self.device_type == "Cpu"
    }
}

pub fn parse_backend(s: &str) -> Result<wgpu::Backends> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "vulkan" => wgpu::Backends::VULKAN,
        "metal" => wgpu::Backends::METAL,
        "dx12" => wgpu::Backends::DX12,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        other => bail!("unknown backend {other:?}: expected vulkan, metal, dx12 or gl"),
    })
}

fn instance(choice: &AdapterChoice) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(b) = choice.backend {
        desc.backends = b;
    }
    wgpu::Instance::new(desc)
}

/// Ranks adapters: real GPUs before software ones (lavapipe must not win over a GPU), discrete first.
fn preference(info: &wgpu::AdapterInfo) -> u8 {
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Every adapter wgpu sees, in the order we would choose them; the first matching `choice` is used.
pub fn list_adapters(choice: &AdapterChoice) -> Vec<(AdapterSummary, bool)> {
    let inst = instance(choice);
    let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| preference(&a.get_info()));
    let chosen = pick(&adapters, choice).map(|a| a.get_info());
    adapters
        .iter()
        .map(|a| {
            let info = a.get_info();
            let is_chosen = chosen.as_ref() == Some(&info);
            (AdapterSummary::of(&info), is_chosen)
        })
        .collect()
}

fn pick<'a>(adapters: &'a [wgpu::Adapter], choice: &AdapterChoice) -> Option<&'a wgpu::Adapter> {
    adapters.iter().find(|a| {
        let info = a.get_info();
        choice
            .name_contains
            .as_ref()
            .is_none_or(|s| info.name.to_lowercase().contains(&s.to_lowercase()))
    })
}

pub const NO_ADAPTER_HELP: &str = "wgpu found no adapter. On Debian/Ubuntu without a GPU, install the \
software Vulkan adapter: `apt-get install -y libvulkan1 mesa-vulkan-drivers` (scripts/tutorial.sh and \
scripts/test.sh do this for you); with a GPU, install its Vulkan driver";

/// Every data buffer can be bound as storage or, through 64 KiB windows, as uniform memory (much faster
/// to read than storage on CPU adapters).
const DATA_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::UNIFORM)
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// The error for "no adapter at all" (or none for the requested backend).
pub fn no_adapter(choice: &AdapterChoice) -> anyhow::Error {
    match choice.backend {
        Some(b) => {
            let name: Vec<String> = b.iter_names().map(|(n, _)| n.to_lowercase()).collect();
            anyhow!(
                "wgpu found no {} adapter (`wgrec adapters` without --backend lists the others)",
                name.join("/")
            )
        }
        None => anyhow!("{NO_ADAPTER_HELP}"),
    }
}

/// A device and queue plus what we know about the adapter behind them.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    /// Submissions not yet waited for (`submit`).
    in_flight: std::sync::Mutex<std::collections::VecDeque<wgpu::SubmissionIndex>>,
}

/// Most submissions `Gpu::submit` lets queue up before it waits for the oldest. Without a bound an epoch
/// of thousands of steps (ML-25M sizes) queues them all, and the staging buffers of their uniform writes
/// pile up until allocation dominates.
pub const MAX_IN_FLIGHT: usize = 4;

impl Gpu {
    pub fn new(choice: &AdapterChoice) -> Result<Self> {
        let inst = instance(choice);
        let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
        adapters.sort_by_key(|a| preference(&a.get_info()));
        if adapters.is_empty() {
            return Err(no_adapter(choice));
        }
        let adapter = pick(&adapters, choice).ok_or_else(|| {
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            anyhow!(
                "no adapter name contains {:?}; adapters found: {}",
                choice.name_contains.as_deref().unwrap_or(""),
                names.join(", ")
            )
        })?;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgrec"),
            // Timestamp queries only cost anything when `--profile` writes them.
            required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .context("creating the wgpu device")?;
        Ok(Self::from_parts(
            device,
            queue,
            AdapterSummary::of(&adapter.get_info()),
            limits,
        ))
    }

    /// A `Gpu` around a device the caller made (tests with their own limits).
    pub fn from_parts(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter: AdapterSummary,
        limits: wgpu::Limits,
    ) -> Self {
        Self {
            device,
            queue,
            adapter,
            limits,
            in_flight: Default::default(),
        }
    }

    /// The first adapter wgpu would pick with default choices, or None (tests skip or fail on None).
    pub fn try_default() -> Option<Self> {
        Self::new(&AdapterChoice::default()).ok()
    }

    /// Largest buffer we can bind as one storage binding.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Rows per tile of a (rows, `candidates`) f32 score matrix: as many as one storage binding holds, at
    /// most `max`, a multiple of 64 (so that tile slices of per-row u32 lists start 256-byte aligned).
    pub fn score_tile_rows(&self, candidates: usize, max: usize, what: &str) -> Result<usize> {
        let rows =
            ((self.max_binding() / (candidates.max(1) as u64 * 4)) as usize).min(max) / 64 * 64;
        if rows == 0 {
            bail!(
                "{candidates} candidates do not fit the adapter's storage binding limit even for 64 {what} \
                 at a time"
            );
        }
        Ok(rows)
    }

    pub fn check_binding(&self, what: &str, bytes: u64) -> Result<()> {
        if bytes > self.max_binding() {
            bail!(
                "{what} needs {:.1} MiB in one storage binding, but adapter {:?} allows at most {:.1} MiB \
                 (max_storage_buffer_binding_size); use a smaller batch size or embedding dimension",
                bytes as f64 / 1048576.0,
                self.adapter.name,
                self.max_binding() as f64 / 1048576.0
            );
        }
        Ok(())
    }

    /// A zero-filled storage buffer of `len` 4-byte elements (at least 16 bytes: bindings may not be empty).
    pub fn buffer(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: ((len.max(4) * 4) as u64).next_multiple_of(16),
            usage: DATA_USAGE,
            mapped_at_creation: false,
        })
    }

    /// A zero-filled buffer of `len` elements that can also be read through uniform windows up to its end.
    pub fn windowed_buffer(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.buffer(label, len + WINDOW)
    }

    /// A storage buffer holding `data` (padded to 16 bytes).
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let mut bytes = bytemuck::cast_slice::<T, u8>(data).to_vec();
        bytes.resize(bytes.len().max(16).next_multiple_of(16), 0);
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &bytes,
                usage: DATA_USAGE,
            })
    }

    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// Copies `len` elements of `buffer` (from element `offset`) back to the host; waits for the GPU.
    pub fn read<T: bytemuck::Pod>(
        &self,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
    ) -> Result<Vec<T>> {
        let size = std::mem::size_of::<T>();
        let bytes = ((len * size) as u64).next_multiple_of(4).max(4);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(buffer, (offset * size) as u64, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .context("waiting for the GPU")?;
        rx.recv()
            .context("readback channel closed")?
            .context("mapping a readback buffer")?;
        let view = slice
            .get_mapped_range()
            .context("reading a mapped buffer")?;
        let out = bytemuck::cast_slice::<u8, T>(&view[..len * size]).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Submits `commands`, then waits for older submissions while more than MAX_IN_FLIGHT are queued.
    pub fn submit(&self, commands: wgpu::CommandBuffer) -> Result<()> {
        let index = self.queue.submit([commands]);
        let mut queued = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        queued.push_back(index);
        while queued.len() > MAX_IN_FLIGHT {
            let oldest = queued.pop_front();
            self.device
                .poll(wgpu::PollType::Wait {
                    submission_index: oldest,
                    timeout: None,
                })
                .context("waiting for the GPU")?;
        }
        Ok(())
    }

    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .context("waiting for the GPU")?;
        Ok(())
    }
}

/// A compute pipeline for one WGSL entry point; the entry point, the label and the launcher share a name,
/// except for a second pipeline of one entry point (other override constants), which has a name of its
/// own so that profiles and traces keep the two apart.
pub struct Kernel<S> {
    pub name: &'static str,
    pub entry: &'static str,
    pub pipeline: wgpu::ComputePipeline,
    /// D, from the override constant D4 where the kernel has one (0 otherwise); profiling prices with it.
    pub dim: u32,
    /// The kernel family's price list, so that the profiler can report FLOPs and bytes per dispatch.
    pub cost: CostFn,
    shader: PhantomData<fn() -> S>,
}

/// Threads per workgroup in every 1-D kernel of `shaders/` (they all use @workgroup_size(64)).
pub const WORKGROUP: u32 = 64;

impl<S: Shader> Kernel<S> {
    /// Compiles `source` and builds the pipeline for the shader's entry point, with override constants.
    /// Shader and pipeline errors come back as errors (not the default panicking handler).
    pub fn new(gpu: &Gpu, source: &str, constants: &[(&str, f64)], cost: CostFn) -> Result<Self> {
        Self::variant(gpu, S::NAME, source, constants, cost)
    }

    /// A second pipeline of the shader's entry point (other constants), named `name`.
    pub fn variant(
        gpu: &Gpu,
        name: &'static str,
        source: &str,
        constants: &[(&str, f64)],
        cost: CostFn,
    ) -> Result<Self> {
        let entry = S::NAME;
        let device = &gpu.device;
        let scopes = [
            device.push_error_scope(wgpu::ErrorFilter::Validation),
            device.push_error_scope(wgpu::ErrorFilter::Internal),
            device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
        ];
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let constants: HashMap<String, f64> =
            constants.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants
                    .iter()
                    .map(|(k, v)| (k.as_str(), *v))
                    .collect::<Vec<_>>(),
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        for scope in scopes.into_iter().rev() {
            if let Some(err) = pollster::block_on(scope.pop()) {
                match entry == name {
                    true => bail!("compiling shader {name}: {err}"),
                    false => bail!("compiling shader {entry} (as {name}): {err}"),
                }
            }
        }
        let dim = constants.get("D4").map_or(0, |d4| 4 * *d4 as u32);
        Ok(Self {
            name,
            entry,
            pipeline,
            dim,
            cost,
            shader: PhantomData,
        })
    }
}

/// Splits a workgroup count into (x, y) with x <= 65535; kernels compute their id as x + y * nx * 64.
/// Extra invocations from rounding y up are bounds-checked away by every kernel.
pub fn grid(groups: u32) -> (u32, u32) {
    const MAX: u32 = 65535;
    if groups <= MAX {
        (groups, 1)
    } else {
        let y = groups.div_ceil(MAX);
        (groups.div_ceil(y), y)
    }
}

/// Binding of a whole buffer.
pub fn whole(b: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
    b.as_entire_binding()
}

/// Floats in one uniform window (64 KiB, WebGPU's default max_uniform_buffer_binding_size).
pub const WINDOW: usize = 16384;

/// Whole rows of `row_len` floats per uniform window, rounded down to a multiple of 64 so that every
/// window's offset (a multiple of rows x row_len x 4 bytes) meets a 256-byte offset alignment.
pub fn window_rows(row_len: usize) -> usize {
    WINDOW / row_len / 64 * 64
}

/// A 64 KiB uniform-memory view of `b` from element `offset` (256-byte aligned; the buffer must extend a
/// full window past it).
pub fn window(b: &wgpu::Buffer, offset: usize) -> wgpu::BindingResource<'_> {
    slice(b, offset, WINDOW)
}

/// Binding of `len` f32/u32 elements of `b` starting at element `offset` (offset must be aligned).
pub fn slice(b: &wgpu::Buffer, offset: usize, len: usize) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: b,
        offset: (offset * 4) as u64,
        size: std::num::NonZeroU64::new(((len * 4) as u64).next_multiple_of(16)),
    })
}
