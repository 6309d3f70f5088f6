//! DeePMD-kit's network containers (`deepmd/dpmodel/utils/network.py`) parsed into
//! [`Layer`] stacks, and running a stack forward and backward on caller-owned buffers.
//!
//! - `Layer` (@version ≤ 2): one [`Layer`].
//! - `EmbeddingNetwork` (@version ≤ 2): `len(neuron)` layers, all with the residual rule and
//!   the same activation.
//! - `FittingNetwork` (@version 1): the same, plus a final linear layer of width `out_dim`.
//! - `NetworkCollection` (@version 1): `ntypes^ndim` networks (or `null`s), the net of key
//!   `(t0, t1, …)` at index `Σ t_k·ntypes^k`.

use crate::import::{Dict, ModelError};
use crate::linalg::Weight;
use crate::nn::Layer;
use crate::{Activation, Real};

/// Reads `@version` with DeePMD's default of 1 when absent and checks it lies in `min..=max`.
pub(crate) fn version(d: &Dict, max: i64, min: i64) -> Result<i64, ModelError> {
    if d.has("@version") {
        d.check_version(max, min)
    } else if (min..=max).contains(&1) {
        Ok(1)
    } else {
        Err(d.err(
            "@version",
            format!("missing (halomd reads versions {min} to {max})"),
        ))
    }
}

/// Checks `@class` is `want` when present (DeePMD pops it without looking; a different class
/// here means the file was assembled wrongly).
pub(crate) fn class(d: &Dict, want: &str) -> Result<(), ModelError> {
    match d.opt("@class") {
        None => Ok(()),
        Some(_) => {
            let c = d.str("@class")?;
            if c == want {
                Ok(())
            } else {
                Err(d.err("@class", format!("expected a `{want}`, found `{c}`")))
            }
        }
    }
}

/// Parses an activation name at `key`.
pub(crate) fn activation(d: &Dict, key: &str) -> Result<Activation, ModelError> {
    match d.opt(key) {
        // NativeLayer stores `None` as "none".
        None => Ok(Activation::Linear),
        Some(_) => Activation::parse(d.str(key)?).map_err(|m| d.err(key, m)),
    }
}

fn to_t<T: Real>(x: &[f64]) -> Vec<T> {
    x.iter().map(|&v| T::of(v)).collect()
}

/// Parses one serialized `Layer` (`NativeLayer`, @version 1–2).
pub fn parse_layer<T: Real>(d: &Dict) -> Result<Layer<T>, ModelError> {
    class(d, "Layer")?;
    version(d, 2, 1)?;
    let vars = d.get("@variables")?;
    let w = vars.array("w")?;
    if w.shape.len() != 2 {
        return Err(vars.err(
            "w",
            format!("expected a 2-d weight matrix, found shape {:?}", w.shape),
        ));
    }
    let (n_in, n_out) = (w.shape[0], w.shape[1]);
    let w = vars.array_shaped("w", &[n_in, n_out])?;
    let b = vars.opt_array_shaped("b", &[n_out])?;
    let idt = vars.opt_array_shaped("idt", &[n_out])?;
    if d.bool_or("bias", b.is_some())? != b.is_some() {
        return Err(d.err("bias", "disagrees with the presence of `@variables.b`"));
    }
    if d.bool_or("use_timestep", idt.is_some())? != idt.is_some() {
        return Err(d.err(
            "use_timestep",
            "disagrees with the presence of `@variables.idt`",
        ));
    }
    Ok(Layer {
        w: Weight::new(n_in, n_out, to_t(&w.data)),
        b: b.map(|a| to_t(&a.data)),
        idt: idt.map(|a| to_t(&a.data)),
        n_in,
        n_out,
        act: activation(d, "activation_function")?,
        resnet: d.bool_or("resnet", false)?,
    })
}

/// Parses the `layers` list, checking that consecutive widths chain from `in_dim`.
fn parse_layers<T: Real>(d: &Dict, in_dim: usize) -> Result<Vec<Layer<T>>, ModelError> {
    let mut out = Vec::new();
    let mut width = in_dim;
    for l in d.list("layers")? {
        let layer = parse_layer::<T>(&l)?;
        if layer.n_in != width {
            return Err(ModelError::field(
                format!("{}.@variables.w", l.path()),
                format!(
                    "layer input width {} does not match the previous width {width}",
                    layer.n_in
                ),
            ));
        }
        width = layer.n_out;
        out.push(layer);
    }
    Ok(out)
}

/// Parses a serialized `EmbeddingNetwork` (@version 1–2) into its layer stack.
pub fn parse_embedding_net<T: Real>(d: &Dict) -> Result<Vec<Layer<T>>, ModelError> {
    class(d, "EmbeddingNetwork")?;
    version(d, 2, 1)?;
    let in_dim = d.usize("in_dim")?;
    let neuron = d.usize_list("neuron")?;
    let layers = parse_layers::<T>(d, in_dim)?;
    let widths: Vec<usize> = layers.iter().map(|l| l.n_out).collect();
    if widths != neuron {
        return Err(d.err(
            "layers",
            format!("layer widths {widths:?} do not match neuron {neuron:?}"),
        ));
    }
    Ok(layers)
}

/// Parses a serialized `FittingNetwork` (@version 1): hidden layers then a linear output.
pub fn parse_fitting_net<T: Real>(d: &Dict) -> Result<Vec<Layer<T>>, ModelError> {
    class(d, "FittingNetwork")?;
    version(d, 1, 1)?;
    let in_dim = d.usize("in_dim")?;
    let out_dim = d.usize("out_dim")?;
    let neuron = d.usize_list("neuron")?;
    let layers = parse_layers::<T>(d, in_dim)?;
    let widths: Vec<usize> = layers.iter().map(|l| l.n_out).collect();
    let mut want = neuron.clone();
    want.push(out_dim);
    if widths != want {
        return Err(d.err(
            "layers",
            format!("layer widths {widths:?} do not match neuron {neuron:?} + out_dim {out_dim}"),
        ));
    }
    Ok(layers)
}

/// A `NetworkCollection`: one optional layer stack per type key.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkCollection<T> {
    /// Key arity: 0 (one shared net), 1 (per type), 2 (per type pair).
    pub ndim: usize,
    /// Number of types.
    pub ntypes: usize,
    /// `ntypes^ndim` stacks; `None` where the file holds `null`.
    pub networks: Vec<Option<Vec<Layer<T>>>>,
}

impl<T: Real> NetworkCollection<T> {
    /// Parses a collection whose `network_type` must be `network_type`
    /// (`embedding_network` or `fitting_network`).
    pub fn parse(d: &Dict, network_type: &str) -> Result<Self, ModelError> {
        class(d, "NetworkCollection")?;
        version(d, 1, 1)?;
        let ndim = d.usize("ndim")?;
        let ntypes = d.usize("ntypes")?;
        d.choice("network_type", &[network_type])?;
        let items = d.list("networks")?;
        let n = u32::try_from(ndim)
            .ok()
            .and_then(|e| ntypes.checked_pow(e))
            .ok_or_else(|| d.err("ndim", format!("unsupported ndim {ndim}")))?;
        if items.len() != n {
            return Err(d.err(
                "networks",
                format!(
                    "expected ntypes^ndim = {ntypes}^{ndim} = {n} networks, found {}",
                    items.len()
                ),
            ));
        }
        let networks = items
            .iter()
            .map(|net| {
                if net.value().is_null() {
                    Ok(None)
                } else if network_type == "fitting_network" {
                    parse_fitting_net::<T>(net).map(Some)
                } else {
                    parse_embedding_net::<T>(net).map(Some)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetworkCollection {
            ndim,
            ntypes,
            networks,
        })
    }

    /// The stack of key `(t0, t1, …)`: index `Σ t_k·ntypes^k`.
    pub fn get(&self, key: &[usize]) -> Option<&[Layer<T>]> {
        debug_assert_eq!(key.len(), self.ndim);
        let mut idx = 0;
        let mut stride = 1;
        for &t in key {
            idx += t * stride;
            stride *= self.ntypes;
        }
        self.networks.get(idx)?.as_deref()
    }
}

/// Number of scalar parameters in a stack.
pub fn param_count<T>(layers: &[Layer<T>]) -> usize {
    layers
        .iter()
        .map(|l| l.w.len() + l.b.as_ref().map_or(0, Vec::len) + l.idt.as_ref().map_or(0, Vec::len))
        .sum()
}

/// Reusable buffers for a layer stack over up to some number of rows: the input of every
/// layer, the saved activation derivatives and the backward scratch. Grows on demand and
/// never shrinks, so a kernel that keeps one per chunk allocates only while warming up.
#[derive(Debug, Default, Clone)]
pub struct StackBuf<T> {
    /// `xs[l]` is the input of layer `l`; `xs[L]` the output of the stack.
    xs: Vec<Vec<T>>,
    /// `dacts[l]` = `idt ⊙ φ'(z)` of layer `l`.
    dacts: Vec<Vec<T>>,
    g: Vec<T>,
    da: Vec<T>,
    db: Vec<T>,
}

fn grow<T: Real>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::zero());
    }
}

impl<T: Real> StackBuf<T> {
    /// Empty buffers.
    pub fn new() -> Self {
        StackBuf {
            xs: Vec::new(),
            dacts: Vec::new(),
            g: Vec::new(),
            da: Vec::new(),
            db: Vec::new(),
        }
    }

    /// The input buffer of the stack, sized for `rows × n_in`: fill it, then call
    /// [`StackBuf::forward`].
    pub fn input(&mut self, layers: &[Layer<T>], rows: usize) -> &mut [T] {
        let n_in = layers.first().map_or(0, |l| l.n_in);
        if self.xs.len() < layers.len() + 1 {
            self.xs.resize_with(layers.len() + 1, Vec::new);
            self.dacts.resize_with(layers.len(), Vec::new);
        }
        grow(&mut self.xs[0], rows * n_in);
        &mut self.xs[0][..rows * n_in]
    }

    /// Runs the stack on the rows placed by [`StackBuf::input`]; returns the output
    /// (`rows × n_out`). With `save`, keeps what [`StackBuf::backward`] needs.
    pub fn forward(&mut self, layers: &[Layer<T>], rows: usize, save: bool) -> &[T] {
        for (l, layer) in layers.iter().enumerate() {
            grow(&mut self.xs[l + 1], rows * layer.n_out);
            let (head, tail) = self.xs.split_at_mut(l + 1);
            let x = &head[l][..rows * layer.n_in];
            let y = &mut tail[0][..rows * layer.n_out];
            if save {
                grow(&mut self.dacts[l], rows * layer.n_out);
                layer.forward(x, rows, y, Some(&mut self.dacts[l][..rows * layer.n_out]));
            } else {
                layer.forward(x, rows, y, None);
            }
        }
        let n_out = layers.last().map_or(0, |l| l.n_out);
        &self.xs[layers.len()][..rows * n_out]
    }

    /// The output of the last [`StackBuf::forward`].
    pub fn output(&self, layers: &[Layer<T>], rows: usize) -> &[T] {
        let n_out = layers.last().map_or(0, |l| l.n_out);
        &self.xs[layers.len()][..rows * n_out]
    }

    /// Backward of the last saved forward: from `dy = ∂L/∂out` (`rows × n_out`) returns
    /// `∂L/∂in` (`rows × n_in`).
    pub fn backward(&mut self, layers: &[Layer<T>], rows: usize, dy: &[T]) -> &[T] {
        let n_out = layers.last().map_or(0, |l| l.n_out);
        grow(&mut self.da, rows * n_out);
        self.da[..rows * n_out].copy_from_slice(&dy[..rows * n_out]);
        for (l, layer) in layers.iter().enumerate().rev() {
            grow(&mut self.g, rows * layer.n_out);
            grow(&mut self.db, rows * layer.n_in);
            layer.backward(
                &self.da[..rows * layer.n_out],
                rows,
                &self.dacts[l][..rows * layer.n_out],
                &mut self.db[..rows * layer.n_in],
                &mut self.g,
            );
            std::mem::swap(&mut self.da, &mut self.db);
        }
        let n_in = layers.first().map_or(0, |l| l.n_in);
        &self.da[..rows * n_in]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::ModelFile;
    use std::path::Path;

    const NET: &str = r#"
net:
  "@class": EmbeddingNetwork
  "@version": 2
  in_dim: 1
  neuron: [2, 4]
  activation_function: tanh
  resnet_dt: true
  bias: true
  precision: float64
  layers:
    - "@class": Layer
      "@version": 2
      bias: true
      use_timestep: false
      activation_function: tanh
      resnet: true
      precision: float64
      "@variables":
        w: {"@class": np.ndarray, "@is_variable": true, dtype: float64, value: [[0.5, -0.3]]}
        b: {"@class": np.ndarray, "@is_variable": true, dtype: float64, value: [0.1, 0.2]}
        idt: null
    - "@class": Layer
      "@version": 2
      bias: true
      use_timestep: true
      activation_function: tanh
      resnet: true
      precision: float64
      "@variables":
        w: {"@class": np.ndarray, "@is_variable": true, dtype: float64, value: [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]}
        b: {"@class": np.ndarray, "@is_variable": true, dtype: float64, value: [0.0, 0.1, 0.2, 0.3]}
        idt: {"@class": np.ndarray, "@is_variable": true, dtype: float64, value: [1.0, 0.5, 0.25, 0.125]}
"#;

    #[test]
    fn embedding_net_and_stack_backward() {
        let f = ModelFile::from_yaml_str(NET, Path::new("n.yaml")).unwrap();
        let layers = parse_embedding_net::<f64>(&f.root().get("net").unwrap()).unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(param_count(&layers), 2 + 2 + 8 + 4 + 4);
        let mut buf = StackBuf::new();
        let rows = 3;
        let xs = [0.3, -0.7, 1.1];
        buf.input(&layers, rows).copy_from_slice(&xs);
        let y = buf.forward(&layers, rows, true).to_vec();
        // By hand for row 0: h = tanh(0.3·w + b) + [x, x]; y = [h, h] + idt ⊙ tanh(h·W + b).
        let x = 0.3f64;
        let h = [(0.5 * x + 0.1).tanh() + x, (-0.3 * x + 0.2).tanh() + x];
        let w2 = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]];
        let b2 = [0.0, 0.1, 0.2, 0.3];
        let idt = [1.0, 0.5, 0.25, 0.125];
        for c in 0..4 {
            let z = h[0] * w2[0][c] + h[1] * w2[1][c] + b2[c];
            let want = h[c % 2] + idt[c] * z.tanh();
            assert!((y[c] - want).abs() < 1e-14);
        }
        let dy = [1.0, -2.0, 0.5, 0.25].repeat(rows);
        let dx = buf.backward(&layers, rows, &dy).to_vec();
        for r in 0..rows {
            let f = |v: f64| {
                let mut b = StackBuf::new();
                b.input(&layers, 1)[0] = v;
                let o = b.forward(&layers, 1, false);
                o.iter().zip(&dy[..4]).map(|(a, b)| a * b).sum::<f64>()
            };
            let h = 1e-6;
            let fd = (f(xs[r] + h) - f(xs[r] - h)) / (2.0 * h);
            assert!((fd - dx[r]).abs() < 1e-8, "{fd} vs {}", dx[r]);
        }
    }

    #[test]
    fn inconsistent_nets_are_rejected() {
        let bad = NET.replace("neuron: [2, 4]", "neuron: [2, 5]");
        let f = ModelFile::from_yaml_str(&bad, Path::new("n.yaml")).unwrap();
        let e = parse_embedding_net::<f64>(&f.root().get("net").unwrap()).unwrap_err();
        assert!(e.to_string().contains("do not match neuron"), "{e}");
        let bad = NET.replacen(
            "\"@version\": 2\n      bias",
            "\"@version\": 3\n      bias",
            1,
        );
        let f = ModelFile::from_yaml_str(&bad, Path::new("n.yaml")).unwrap();
        let e = parse_embedding_net::<f64>(&f.root().get("net").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "net.layers[0].@version: version 3 is not supported (halomd reads versions 1 to 2)"
        );
        let bad = NET.replacen(
            "activation_function: tanh\n      resnet",
            "activation_function: swish\n      resnet",
            1,
        );
        let f = ModelFile::from_yaml_str(&bad, Path::new("n.yaml")).unwrap();
        let e = parse_embedding_net::<f64>(&f.root().get("net").unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .contains("net.layers[0].activation_function: unknown activation function `swish`"),
            "{e}"
        );
    }
}
