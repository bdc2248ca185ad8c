//! Every shader in `shaders/` and `shaders/gpu/` checked by naga without an adapter: it parses, validates
//! with no optional capabilities, has an entry point named after its file, and translates to SPIR-V
//! (Vulkan), MSL (Metal) and HLSL (DX12) for every value of its override constants that the launchers use.
//! The GPU family's shaders also stay within WebGPU's default limits on storage buffers and workgroup memory.

use naga::back::pipeline_constants::process_overrides;
use naga::back::PipelineConstants;
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{Module, ShaderStage};
use wgrec::kernels::gpu::{INTERFACES as GPU_INTERFACES, SHADERS as GPU_SHADERS};
use wgrec::kernels::windowed::{INTERFACES, SHADERS};

fn parse(name: &str, source: &str) -> Module {
    naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}.wgsl does not parse:\n{}", e.emit_to_string(source)))
}

fn validate(name: &str, source: &str, module: &Module) -> ModuleInfo {
    Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(module)
        .unwrap_or_else(|e| panic!("{name}.wgsl is invalid:\n{}", e.emit_to_string(source)))
}

/// The override values to try for a shader: every combination of the values `Kernels::new` can ask for
/// (D4 = 8 is D = 32, D4 = 3 is D = 12, D4 = 16 the largest D = 64), plus the WGSL defaults (nothing
/// given). Other overrides keep their defaults.
fn override_sets(module: &Module) -> Vec<Vec<(String, f64)>> {
    let mut sets = vec![vec![]];
    for (_, o) in module.overrides.iter() {
        let Some(name) = o.name.as_deref() else {
            continue;
        };
        let values: &[f64] = match name {
            "D4" => &[8.0, 3.0, 16.0],
            "RELU" | "MASK" => &[1.0, 0.0],
            _ => continue,
        };
        let mut next = vec![vec![]];
        for set in &sets {
            for &v in values {
                let mut s: Vec<(String, f64)> = set.clone();
                s.push((name.to_string(), v));
                next.push(s);
            }
        }
        sets = next;
    }
    sets
}

/// Every resource binding of the module, with whether it is writable.
fn bindings(module: &Module) -> Vec<(naga::ResourceBinding, bool)> {
    module
        .global_variables
        .iter()
        .filter_map(|(_, g)| {
            let writable = match g.space {
                naga::AddressSpace::Storage { access } => {
                    access.contains(naga::StorageAccess::STORE)
                }
                _ => false,
            };
            g.binding.map(|b| (b, writable))
        })
        .collect()
}

fn to_spirv(name: &str, module: &Module, info: &ModuleInfo) {
    let options = naga::back::spv::Options {
        fake_missing_bindings: false,
        binding_map: bindings(module)
            .into_iter()
            .map(|(b, _)| {
                (
                    b,
                    naga::back::spv::BindingInfo {
                        descriptor_set: b.group,
                        binding: b.binding,
                        binding_array_size: None,
                    },
                )
            })
            .collect(),
        ..Default::default()
    };
    let pipeline = naga::back::spv::PipelineOptions {
        shader_stage: ShaderStage::Compute,
        entry_point: name.to_string(),
    };
    let words = naga::back::spv::write_vec(module, info, &options, Some(&pipeline))
        .unwrap_or_else(|e| panic!("{name}: SPIR-V translation failed: {e}"));
    assert_eq!(words.first(), Some(&0x0723_0203), "{name}: not SPIR-V");
}

fn to_msl(name: &str, module: &Module, info: &ModuleInfo) {
    let mut resources = naga::back::msl::EntryPointResources::default();
    for (slot, (b, writable)) in bindings(module).into_iter().enumerate() {
        resources.resources.insert(
            b,
            naga::back::msl::BindTarget {
                buffer: Some(slot as u8),
                mutable: writable,
                ..Default::default()
            },
        );
    }
    // Runtime-sized arrays need their lengths for bounds checks, as wgpu's Metal backend passes them.
    resources.sizes_buffer = Some(resources.resources.len() as u8);
    let restrict = naga::proc::BoundsCheckPolicy::Restrict;
    let options = naga::back::msl::Options {
        lang_version: (2, 0),
        fake_missing_bindings: false,
        per_entry_point_map: [(name.to_string(), resources)].into_iter().collect(),
        bounds_check_policies: naga::proc::BoundsCheckPolicies {
            index: restrict,
            buffer: restrict,
            image_load: restrict,
            binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
        },
        zero_initialize_workgroup_memory: false,
        ..Default::default()
    };
    let pipeline = naga::back::msl::PipelineOptions {
        entry_point: Some((ShaderStage::Compute, name.to_string())),
        ..Default::default()
    };
    let (source, translation) = naga::back::msl::write_string(module, info, &options, &pipeline)
        .unwrap_or_else(|e| panic!("{name}: MSL translation failed: {e}"));
    if let Some(Err(e)) = translation.entry_point_names.first() {
        panic!("{name}: MSL entry point failed: {e}");
    }
    assert!(source.contains("kernel"), "{name}: MSL has no kernel");
}

fn to_hlsl(name: &str, module: &Module, info: &ModuleInfo) {
    let options = naga::back::hlsl::Options {
        shader_model: naga::back::hlsl::ShaderModel::V5_1,
        fake_missing_bindings: false,
        binding_map: bindings(module)
            .into_iter()
            .map(|(b, _)| {
                let target = naga::back::hlsl::BindTarget {
                    space: b.group as u8,
                    register: b.binding,
                    ..Default::default()
                };
                (b, target)
            })
            .collect(),
        zero_initialize_workgroup_memory: false,
        ..Default::default()
    };
    let pipeline = naga::back::hlsl::PipelineOptions {
        entry_point: Some((ShaderStage::Compute, name.to_string())),
    };
    let mut source = String::new();
    naga::back::hlsl::Writer::new(&mut source, &options, &pipeline)
        .write(module, info, None)
        .unwrap_or_else(|e| panic!("{name}: HLSL translation failed: {e}"));
    assert!(
        source.contains("numthreads"),
        "{name}: HLSL has no numthreads"
    );
}

#[test]
fn every_shader_validates_and_translates_for_every_backend() {
    for &(name, source) in SHADERS.iter().chain(GPU_SHADERS) {
        let module = parse(name, source);
        let info = validate(name, source, &module);
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| {
                panic!("{name}.wgsl has no entry point called {name} (file stem = entry point)")
            });
        assert_eq!(entry.stage, ShaderStage::Compute, "{name}");
        let [x, y, z] = entry.workgroup_size;
        assert!(
            x * y * z >= 1 && x * y * z <= 256,
            "{name}: workgroup size {x}x{y}x{z} is beyond WebGPU's default limit of 256 invocations"
        );
        for set in override_sets(&module) {
            let constants: PipelineConstants = set.iter().map(|(k, v)| (k.clone(), *v)).collect();
            let (resolved, resolved_info) = process_overrides(
                &module,
                &info,
                Some((ShaderStage::Compute, name)),
                &constants,
            )
            .unwrap_or_else(|e| panic!("{name} with overrides {set:?}: {e}"));
            to_spirv(name, &resolved, &resolved_info);
            to_msl(name, &resolved, &resolved_info);
            to_hlsl(name, &resolved, &resolved_info);
        }
    }
}

#[test]
fn every_wgsl_file_is_listed_in_shaders() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for (dir, list, what) in [
        (root.clone(), SHADERS, "kernels::SHADERS"),
        (root.join("gpu"), GPU_SHADERS, "kernels::gpu::SHADERS"),
    ] {
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("the shader folder exists")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut listed: Vec<String> = list.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(files, listed, "{}/*.wgsl and {what} differ", dir.display());
        for &(name, source) in list {
            let on_disk = std::fs::read_to_string(dir.join(format!("{name}.wgsl"))).unwrap();
            assert_eq!(on_disk, source, "{what}[{name}] is not {name}.wgsl");
        }
    }
}

/// The typed bindings (`shaders!` in each family) name every shader once, with its bindings in the
/// shader's order and by its names, and a uniform the size of the shader's `p`: a binding added to a
/// shader without its struct field (or the other way round) fails here, and a launch missing the field
/// does not compile.
#[test]
fn typed_bindings_match_every_shader() {
    let interfaces: Vec<_> = INTERFACES.iter().chain(GPU_INTERFACES).collect();
    let mut declared: Vec<&str> = interfaces.iter().map(|i| i.name).collect();
    let mut shaders: Vec<&str> = SHADERS.iter().chain(GPU_SHADERS).map(|(n, _)| *n).collect();
    declared.sort();
    shaders.sort();
    assert_eq!(declared, shaders, "shaders and typed interfaces differ");
    for i in interfaces {
        let (_, source) = SHADERS
            .iter()
            .chain(GPU_SHADERS)
            .find(|(n, _)| *n == i.name)
            .unwrap();
        let module = parse(i.name, source);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let mut found: Vec<(u32, String, bool, u32)> = module
            .global_variables
            .iter()
            .filter_map(|(_, g)| {
                let b = g.binding?;
                assert_eq!(b.group, 0, "{}: only group 0 is bound", i.name);
                let uniform = g.space == naga::AddressSpace::Uniform;
                let name = g.name.clone().unwrap_or_default();
                Some((b.binding, name, uniform, layouter[g.ty].size))
            })
            .collect();
        found.sort();
        let (uniform, rest) = found.split_last().expect("a shader with bindings");
        let indices: Vec<u32> = found.iter().map(|f| f.0).collect();
        assert_eq!(
            indices,
            (0..found.len() as u32).collect::<Vec<_>>(),
            "{}: bindings are not 0..n",
            i.name
        );
        assert!(
            uniform.1 == "p" && uniform.2,
            "{}: the last binding is the uniform p",
            i.name
        );
        let names: Vec<&str> = rest.iter().map(|f| f.1.as_str()).collect();
        assert_eq!(names, i.bindings, "{}: binding names", i.name);
        assert_eq!(
            i.params_size, uniform.3 as usize,
            "{}: the Rust uniform and the shader's Params differ in size",
            i.name
        );
    }
}

/// WebGPU's defaults (`wgpu::Limits::default()`), which the GPU family must fit so it can run anywhere.
#[test]
fn gpu_family_shaders_fit_webgpu_default_limits() {
    let limits = wgpu::Limits::default();
    for &(name, source) in GPU_SHADERS {
        let module = parse(name, source);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (mut storage, mut workgroup_bytes) = (0, 0);
        for (_, g) in module.global_variables.iter() {
            match g.space {
                naga::AddressSpace::Storage { .. } => storage += 1,
                naga::AddressSpace::WorkGroup => workgroup_bytes += layouter[g.ty].size,
                _ => {}
            }
        }
        assert!(
            storage <= limits.max_storage_buffers_per_shader_stage,
            "{name}: {storage} storage buffers, WebGPU's default allows {}",
            limits.max_storage_buffers_per_shader_stage
        );
        assert!(
            workgroup_bytes <= limits.max_compute_workgroup_storage_size,
            "{name}: {workgroup_bytes} bytes of workgroup memory, WebGPU's default allows {}",
            limits.max_compute_workgroup_storage_size
        );
    }
}
