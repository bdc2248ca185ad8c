//! Where the time goes: per-dispatch GPU timings (wgpu-profiler timestamp queries, or CPU timing where the
//! adapter has none), a per-kernel table with achieved GFLOP/s and GB/s, and a Chrome trace of CPU phases
//! and GPU dispatches (`trace`).

use crate::gpu::Gpu;
use anyhow::{anyhow, bail, Context, Result};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;
use wgpu_profiler::{GpuProfiler, GpuProfilerSettings};

/// Floating-point operations and bytes of one dispatch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    pub flops: f64,
    /// Compulsory traffic: every operand read once and every result written once.
    pub bytes: f64,
}

/// Totals of one kernel in one phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelStat {
    pub calls: u64,
    pub seconds: f64,
    pub flops: f64,
    pub bytes: f64,
}

/// How dispatches are timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Timestamp queries written by the GPU at the start and end of a compute pass holding one dispatch.
    GpuTimestamps,
    /// The adapter has no TIMESTAMP_QUERY: each dispatch is submitted alone and timed on the CPU, submission
    /// and wake-up included, so short kernels look slower than they are.
    CpuWallClock,
}

/// Times every dispatch of the passes it is attached to. Each dispatch then runs in its own compute pass (or
/// submission), and every submission waits for the GPU, so a profiled run is slower than a plain one; the
/// per-kernel times are what the kernels themselves take.
pub struct Profiler {
    device: wgpu::Device,
    queue: wgpu::Queue,
    timer: Option<RefCell<GpuProfiler>>,
    /// (kernel, cost) of every dispatch recorded since the last submission; the index is the query label.
    pending: RefCell<Vec<(&'static str, Cost)>>,
    phase: Cell<&'static str>,
    stats: RefCell<BTreeMap<(&'static str, &'static str), KernelStat>>,
    /// Submissions per phase, in the order the phases first appeared.
    steps: RefCell<Vec<(&'static str, u64)>>,
    error: RefCell<Option<anyhow::Error>>,
}

impl Profiler {
    /// GPU timestamps where the device has TIMESTAMP_QUERY, CPU timing otherwise.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let timing = if gpu
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            Timing::GpuTimestamps
        } else {
            Timing::CpuWallClock
        };
        Self::with_timing(gpu, timing)
    }

    pub fn with_timing(gpu: &Gpu, timing: Timing) -> Result<Self> {
        if timing == Timing::GpuTimestamps
            && !gpu
                .device
                .features()
                .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            bail!("adapter {} has no timestamp queries", gpu.adapter.name);
        }
        let timer = if timing == Timing::GpuTimestamps {
            let settings = GpuProfilerSettings {
                enable_debug_groups: false,
                ..Default::default()
            };
            let p = GpuProfiler::new(&gpu.device, settings)
                .map_err(|e| anyhow!("creating the GPU profiler: {e}"))?;
            Some(RefCell::new(p))
        } else {
            None
        };
        Ok(Self {
            device: gpu.device.clone(),
            queue: gpu.queue.clone(),
            timer,
            pending: RefCell::new(Vec::new()),
            phase: Cell::new("train"),
            stats: RefCell::new(BTreeMap::new()),
            steps: RefCell::new(Vec::new()),
            error: RefCell::new(None),
        })
    }

    pub fn timing(&self) -> Timing {
        if self.timer.is_some() {
            Timing::GpuTimestamps
        } else {
            Timing::CpuWallClock
        }
    }

    /// What the following submissions count as (e.g. "train", "evaluate").
    pub fn set_phase(&self, phase: &'static str) {
        self.phase.set(phase);
    }

    /// Forgets everything measured so far.
    pub fn reset(&self) {
        self.stats.borrow_mut().clear();
        self.steps.borrow_mut().clear();
    }

    /// Records one dispatch of kernel `name` (`encode` sets its pipeline and bindings and dispatches) into
    /// `encoder`, timed on its own.
    pub fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        name: &'static str,
        cost: Cost,
        encode: impl FnOnce(&mut wgpu::ComputePass),
    ) {
        let desc = |timestamp_writes| wgpu::ComputePassDescriptor {
            label: Some(name),
            timestamp_writes,
        };
        match &self.timer {
            Some(timer) => {
                let mut pending = self.pending.borrow_mut();
                let timer = timer.borrow();
                let query = timer.begin_pass_query(pending.len().to_string(), encoder);
                pending.push((name, cost));
                {
                    let mut pass =
                        encoder.begin_compute_pass(&desc(query.compute_pass_timestamp_writes()));
                    encode(&mut pass);
                }
                timer.end_query(encoder, query);
            }
            None => {
                // Everything recorded before this dispatch runs first, then the dispatch alone.
                self.flush(encoder);
                let t0 = Instant::now();
                {
                    let mut pass = encoder.begin_compute_pass(&desc(None));
                    encode(&mut pass);
                }
                self.flush(encoder);
                let seconds = t0.elapsed().as_secs_f64();
                self.add(name, cost, seconds);
                trace::complete(name, "gpu", trace::GPU_TID, t0, seconds);
            }
        }
    }

    /// Submits what `encoder` holds, swaps in a fresh one and waits for the GPU (CPU timing only).
    fn flush(&self, encoder: &mut wgpu::CommandEncoder) {
        let fresh = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("profiled dispatch"),
            });
        let done = std::mem::replace(encoder, fresh);
        self.queue.submit([done.finish()]);
        if let Err(e) = self.device.poll(wgpu::PollType::wait_indefinitely()) {
            self.error.borrow_mut().get_or_insert(anyhow!(e));
        }
    }

    fn add(&self, kernel: &'static str, cost: Cost, seconds: f64) {
        let mut stats = self.stats.borrow_mut();
        let s = stats.entry((self.phase.get(), kernel)).or_default();
        s.calls += 1;
        s.seconds += seconds;
        s.flops += cost.flops;
        s.bytes += cost.bytes;
    }

    /// Submits a profiled step, waits for it and adds its dispatch timings to the totals.
    pub fn submit(&self, mut encoder: wgpu::CommandEncoder) -> Result<()> {
        if let Some(timer) = &self.timer {
            timer.borrow_mut().resolve_queries(&mut encoder);
        }
        let t0 = Instant::now();
        self.queue.submit([encoder.finish()]);
        {
            let mut steps = self.steps.borrow_mut();
            let phase = self.phase.get();
            match steps.iter_mut().find(|(p, _)| *p == phase) {
                Some((_, n)) => *n += 1,
                None => steps.push((phase, 1)),
            }
        }
        if let Some(e) = self.error.borrow_mut().take() {
            return Err(e).context("waiting for a profiled dispatch");
        }
        let Some(timer) = &self.timer else {
            return Ok(());
        };
        let mut timer = timer.borrow_mut();
        timer
            .end_frame()
            .map_err(|e| anyhow!("closing a profiler frame: {e}"))?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .context("waiting for the GPU")?;
        let results = timer
            .process_finished_frame(self.queue.get_timestamp_period())
            .ok_or_else(|| {
                anyhow!("the GPU finished but its timestamp queries did not come back")
            })?;
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        // GPU timestamps have their own origin: the trace places the step's first dispatch at its submission.
        let origin = results
            .iter()
            .filter_map(|r| r.time.as_ref().map(|t| t.start))
            .fold(f64::INFINITY, f64::min);
        for r in &results {
            let (Some(time), Ok(i)) = (&r.time, r.label.parse::<usize>()) else {
                continue;
            };
            let (kernel, cost) = pending[i];
            let seconds = time.end - time.start;
            self.add(kernel, cost, seconds);
            let start = t0 + std::time::Duration::from_secs_f64((time.start - origin).max(0.0));
            trace::complete(kernel, "gpu", trace::GPU_TID, start, seconds);
        }
        Ok(())
    }

    /// Per-kernel totals of `phase`, slowest first.
    pub fn kernels(&self, phase: &str) -> Vec<(&'static str, KernelStat)> {
        let mut v: Vec<_> = self
            .stats
            .borrow()
            .iter()
            .filter(|((p, _), _)| *p == phase)
            .map(|((_, k), s)| (*k, *s))
            .collect();
        v.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
        v
    }

    /// Submissions (steps) counted in `phase`.
    pub fn steps(&self, phase: &str) -> u64 {
        self.steps
            .borrow()
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(0, |(_, n)| *n)
    }

    /// The per-kernel table of every phase measured.
    pub fn table(&self) -> String {
        let phases: Vec<&'static str> = self.steps.borrow().iter().map(|(p, _)| *p).collect();
        let mut s = String::new();
        for phase in phases {
            let rows = self.kernels(phase);
            if rows.is_empty() {
                continue;
            }
            let total: f64 = rows.iter().map(|(_, k)| k.seconds).sum();
            let steps = self.steps(phase).max(1);
            s.push_str(&format!(
                "{phase}: {steps} submissions, {:.1} ms of kernels per submission ({})\n",
                1e3 * total / steps as f64,
                match self.timing() {
                    Timing::GpuTimestamps => "GPU timestamps",
                    Timing::CpuWallClock => "CPU wall clock per dispatch",
                }
            ));
            s.push_str(&format!(
                "  {:<26}{:>8}{:>11}{:>8}{:>10}{:>9}\n",
                "kernel", "calls", "total ms", "share", "GFLOP/s", "GB/s"
            ));
            for (name, k) in rows {
                let rate = |x: f64| {
                    if k.seconds > 0.0 && x > 0.0 {
                        format!("{:.1}", x / k.seconds / 1e9)
                    } else {
                        "-".into()
                    }
                };
                s.push_str(&format!(
                    "  {:<26}{:>8}{:>11.1}{:>7.1}%{:>10}{:>9}\n",
                    name,
                    k.calls,
                    1e3 * k.seconds,
                    100.0 * k.seconds / total.max(f64::MIN_POSITIVE),
                    rate(k.flops),
                    rate(k.bytes),
                ));
            }
        }
        s
    }

    /// The totals as JSON: {phase: {"submissions", "kernels": [{kernel, calls, seconds, flops, bytes}]}}.
    pub fn to_json(&self) -> serde_json::Value {
        let phases: Vec<&'static str> = self.steps.borrow().iter().map(|(p, _)| *p).collect();
        let mut m = serde_json::Map::new();
        for phase in phases {
            let kernels: Vec<serde_json::Value> = self
                .kernels(phase)
                .into_iter()
                .map(|(k, s)| {
                    serde_json::json!({"kernel": k, "calls": s.calls, "seconds": s.seconds,
                        "flops": s.flops, "bytes": s.bytes})
                })
                .collect();
            m.insert(
                phase.into(),
                serde_json::json!({"submissions": self.steps(phase), "kernels": kernels}),
            );
        }
        serde_json::Value::Object(m)
    }
}

/// Submits `encoder`: straight to the queue, or through the profiler (which waits and collects timings).
pub fn submit(gpu: &Gpu, encoder: wgpu::CommandEncoder, profiler: Option<&Profiler>) -> Result<()> {
    match profiler {
        Some(p) => p.submit(encoder),
        None => gpu.submit(encoder.finish()),
    }
}

/// A Chrome trace (chrome://tracing, Perfetto) of CPU phases and GPU dispatches, collected process-wide
/// once `start` is called and written by `write`.
pub mod trace {
    use std::sync::Mutex;
    use std::time::Instant;

    pub const CPU_TID: u32 = 1;
    pub const GPU_TID: u32 = 2;

    struct Trace {
        origin: Instant,
        events: Vec<serde_json::Value>,
    }

    static TRACE: Mutex<Option<Trace>> = Mutex::new(None);

    /// Starts collecting events (times are relative to now).
    pub fn start() {
        *TRACE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Trace {
            origin: Instant::now(),
            events: Vec::new(),
        });
    }

    /// A complete event ("ph": "X") of `seconds` starting at `start`.
    pub fn complete(name: &str, cat: &str, tid: u32, start: Instant, seconds: f64) {
        let mut guard = TRACE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = guard.as_mut() {
            let ts = start.saturating_duration_since(t.origin).as_secs_f64() * 1e6;
            t.events.push(serde_json::json!({
                "name": name, "cat": cat, "ph": "X", "pid": 1, "tid": tid,
                "ts": ts, "dur": seconds * 1e6,
            }));
        }
    }

    /// A CPU phase that lasts until the returned guard is dropped.
    pub fn span(name: impl Into<String>) -> Span {
        Span {
            name: name.into(),
            start: Instant::now(),
        }
    }

    pub struct Span {
        name: String,
        start: Instant,
    }

    impl Drop for Span {
        fn drop(&mut self) {
            let seconds = self.start.elapsed().as_secs_f64();
            complete(&self.name, "cpu", CPU_TID, self.start, seconds);
        }
    }

    /// The events collected so far as a Chrome trace (chrome://tracing, ui.perfetto.dev).
    pub fn to_json() -> serde_json::Value {
        let events = {
            let guard = TRACE.lock().unwrap_or_else(|e| e.into_inner());
            let mut events: Vec<serde_json::Value> =
                guard.as_ref().map(|t| t.events.clone()).unwrap_or_default();
            for (tid, name) in [(CPU_TID, "CPU (host)"), (GPU_TID, "GPU (dispatches)")] {
                events.push(
                    serde_json::json!({"name": "thread_name", "ph": "M", "pid": 1,
                    "tid": tid, "args": {"name": name}}),
                );
            }
            events
        };
        serde_json::json!({"traceEvents": events, "displayTimeUnit": "ms"})
    }
}
