//! Typed kernel interfaces: every WGSL shader has a marker type that names its entry point, its uniform and
//! its bindings struct, so that a launch that misses a binding, or passes another kernel's, does not compile.

/// One WGSL compute shader as the host sees it; declared with `shaders!`.
pub trait Shader {
    /// The entry point, which is also the file stem, the pipeline label and the profile row.
    const NAME: &'static str;
    /// The shader's bindings in binding order, without the uniform `p`, which always comes last.
    const BINDINGS: &'static [&'static str];
    /// The uniform, mirroring the shader's `Params`.
    type Params: bytemuck::Pod;
    /// One resource per binding, by the shader's names.
    type Bindings<'a>: Resources;
}

/// What `shaders!` declares of one shader, for the test that holds it against the WGSL.
#[derive(Clone, Copy, Debug)]
pub struct Interface {
    pub name: &'static str,
    pub bindings: &'static [&'static str],
    /// Bytes of the Rust uniform.
    pub params_size: usize,
}

/// A bindings struct's resources in binding order.
pub trait Resources {
    fn resources(&self) -> Vec<wgpu::BindingResource<'_>>;
}

/// Declares shaders, each as `Marker = "entry_point" (Params) MarkerBindings { binding, ... }`, and
/// `INTERFACES`, the names of all of them and their bindings (a test holds them against the WGSL).
macro_rules! shaders {
    ($(
        $(#[$doc:meta])*
        $marker:ident = $name:literal ($params:ty) $bindings:ident { $($field:ident),* $(,)? }
    )*) => {
        $(
            $(#[$doc])*
            pub struct $marker;

            #[doc = concat!("The bindings of `", $name, "` in its binding order (the uniform follows).")]
            #[derive(Clone)]
            pub struct $bindings<'a> {
                $(pub $field: wgpu::BindingResource<'a>,)*
            }

            impl $crate::gpu::shader::Shader for $marker {
                const NAME: &'static str = $name;
                const BINDINGS: &'static [&'static str] = &[$(stringify!($field)),*];
                type Params = $params;
                type Bindings<'a> = $bindings<'a>;
            }

            impl $crate::gpu::shader::Resources for $bindings<'_> {
                fn resources(&self) -> Vec<wgpu::BindingResource<'_>> {
                    vec![$(self.$field.clone()),*]
                }
            }
        )*

        /// Every shader declared here: its entry point, its bindings' names and its uniform's size.
        pub const INTERFACES: &[$crate::gpu::shader::Interface] = &[$(
            $crate::gpu::shader::Interface {
                name: $name,
                bindings: <$marker as $crate::gpu::shader::Shader>::BINDINGS,
                params_size: std::mem::size_of::<$params>(),
            }
        ),*];
    };
}
pub(crate) use shaders;
