"""An ONNX graph as a torch module: the exported ``.onnx`` file run by torch instead of ONNX Runtime.

``OnnxModule.load(path)`` reads the file (never a checkpoint) and returns an ``nn.Module`` whose
``forward(*inputs)`` evaluates the graph node by node with torch operations. Nodes whose inputs are
all constants (our fp16 exports' weight casts, shape constants) are evaluated once at load time.
Floating-point values follow the module's dtype (``.half()``, ``.to(torch.bfloat16)``): every
``Cast`` to a floating type casts to that compute dtype, so an fp16 run stays fp16 end to end.
Integer constants (shapes, axes, indices) stay on the CPU, so shape arithmetic never waits for a
GPU and a CUDA graph can capture the whole forward.

The operator set covers what ``training/export.py`` writes for every preset (Conv, Gemm, Resize,
DepthToSpace, LeakyRelu, ...) and the usual ops of DeepFaceLab DFM files converted by tf2onnx;
an unsupported operator is named in a ``ModelContractError`` when the file is loaded.

Written here rather than taken from ``onnx2torch``: that package requires ``torchvision`` (for two
detection operators), which pins an exact torch build; on a CUDA machine it must match that
machine's CUDA torch, and on the CPU machines it would replace the local CPU torch — the very
version-matching pain this path exists to avoid. The operators are one line of torch each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.swap.model_contract import ModelContractError

_FLOAT_TYPES = {1: torch.float32, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16}
_INT_TYPES = {2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32, 7: torch.int64, 9: torch.bool}


def _axes(value, rank: int) -> list[int]:
    return [int(a) + rank if int(a) < 0 else int(a) for a in value]


def _ints(t) -> list[int]:
    return [int(v) for v in (t.tolist() if isinstance(t, torch.Tensor) else t)]


def _str(a: dict, key: str, default: str) -> str:
    """A string attribute (ONNX stores them as bytes)."""
    value = a.get(key, default)
    return value.decode() if isinstance(value, bytes) else value


def _opt(inputs: list, i: int):
    """Input ``i`` of a node, or None where it is absent or named ''."""
    return inputs[i] if len(inputs) > i else None


# ---- operators: fn(inputs: list[Tensor | None], attrs: dict, ctx) -> Tensor | tuple ---------------

def _conv(x, w, b, a):
    rank = x.dim() - 2
    strides = a.get("strides", [1] * rank)
    dilations = a.get("dilations", [1] * rank)
    group = a.get("group", 1)
    pads = list(a.get("pads", [0] * (2 * rank)))
    auto = _str(a, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * rank)
        for d in range(rank):
            size, k = x.shape[2 + d], (w.shape[2 + d] - 1) * dilations[d] + 1
            total = max(0, (math.ceil(size / strides[d]) - 1) * strides[d] + k - size)
            small, big = total // 2, total - total // 2
            pads[d], pads[d + rank] = (small, big) if auto == "SAME_UPPER" else (big, small)
    begin, end = pads[:rank], pads[rank:]
    if begin != end:  # asymmetric padding: pad explicitly, then convolve unpadded
        x = F.pad(x, [p for d in reversed(range(rank)) for p in (begin[d], end[d])])
        begin = [0] * rank
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    return conv(x, w, b, strides, begin, dilations, group)


def _conv_transpose(x, w, b, a):
    rank = x.dim() - 2
    pads = list(a.get("pads", [0] * (2 * rank)))
    if pads[:rank] != pads[rank:] or "output_shape" in a:
        raise ModelContractError("ConvTranspose with asymmetric pads or output_shape is not supported by the torch runner")
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[rank]
    return fn(x, w, b, a.get("strides", [1] * rank), pads[:rank], a.get("output_padding", [0] * rank),
              a.get("group", 1), a.get("dilations", [1] * rank))


def _gemm(i, a):
    x, w, c = i[0], i[1], _opt(i, 2)
    if a.get("transA", 0):
        x = x.transpose(0, 1)
    if a.get("transB", 0):
        w = w.transpose(0, 1)
    y = torch.matmul(x, w) * a.get("alpha", 1.0) if a.get("alpha", 1.0) != 1.0 else torch.matmul(x, w)
    if c is not None:
        y = y + (c * a["beta"] if a.get("beta", 1.0) != 1.0 else c)
    return y


def _reshape(x, shape, a):
    shape = _ints(shape)
    if not a.get("allowzero", 0):
        shape = [x.shape[d] if s == 0 else s for d, s in enumerate(shape)]
    return x.reshape(shape)


def _depth_to_space(x, a):
    b = a["blocksize"]
    n, c, h, w = x.shape
    if _str(a, "mode", "DCR") == "CRD":
        return F.pixel_shuffle(x, b)
    y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


def _space_to_depth(x, a):
    b = a["blocksize"]
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def _resize(i, a):
    x = i[0]
    scales, sizes = _opt(i, 2), _opt(i, 3)
    mode, ctm = _str(a, "mode", "nearest"), _str(a, "coordinate_transformation_mode", "half_pixel")
    nearest = _str(a, "nearest_mode", "round_prefer_floor")
    spatial = x.dim() - 2
    if sizes is not None and sizes.numel():
        size = _ints(sizes)[2:]
        kwargs = {"size": size}
    else:
        s = [float(v) for v in scales.tolist()]
        if s[:2] != [1.0, 1.0]:
            raise ModelContractError("Resize over the batch or channel axis is not supported by the torch runner")
        kwargs = {"scale_factor": s[2:], "recompute_scale_factor": False}
    if mode == "nearest":
        if ctm == "asymmetric" and nearest == "floor":
            return F.interpolate(x, mode="nearest", **kwargs)
        if ctm in ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn") and nearest in ("round_prefer_ceil", "floor"):
            return F.interpolate(x, mode="nearest-exact", **kwargs)
    elif mode == "linear":
        torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial]
        if ctm in ("half_pixel", "pytorch_half_pixel"):
            return F.interpolate(x, mode=torch_mode, align_corners=False, **kwargs)
        if ctm == "align_corners":
            return F.interpolate(x, mode=torch_mode, align_corners=True, **kwargs)
    elif mode == "cubic" and ctm in ("half_pixel", "pytorch_half_pixel") and a.get("cubic_coeff_a", -0.75) == -0.75:
        return F.interpolate(x, mode="bicubic", align_corners=False, **kwargs)
    raise ModelContractError(f"Resize mode={mode} coordinate_transformation_mode={ctm} nearest_mode={nearest} "
                             "is not supported by the torch runner")


def _slice(i, a):
    x = i[0]
    if len(i) > 1:  # opset >= 10: starts, ends, axes, steps are inputs
        starts, ends = _ints(i[1]), _ints(i[2])
        axes = _ints(i[3]) if _opt(i, 3) is not None else list(range(len(starts)))
        steps = _ints(i[4]) if _opt(i, 4) is not None else [1] * len(starts)
    else:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
    index = [slice(None)] * x.dim()
    for s, e, ax, st in zip(starts, ends, _axes(axes, x.dim()), steps):
        if st < 0:
            raise ModelContractError("Slice with a negative step is not supported by the torch runner")
        size = x.shape[ax]
        index[ax] = slice(max(-size, min(s, size)), max(-size, min(e, size)), st)
    return x[tuple(index)]


def _split(i, a):
    x = i[0]
    axis = _axes([a.get("axis", 0)], x.dim())[0]
    if _opt(i, 1) is not None:
        sizes = _ints(i[1])
    elif "split" in a:
        sizes = a["split"]
    else:
        n = a.get("num_outputs", a["_outputs"])
        sizes = [math.ceil(x.shape[axis] / n)] * (n - 1)
        sizes.append(x.shape[axis] - sum(sizes))
    return tuple(torch.split(x, sizes, dim=axis))


def _squeeze(i, a):
    x = i[0]
    axes = _ints(i[1]) if _opt(i, 1) is not None else a.get("axes")
    if axes is None:
        return x.squeeze()
    for ax in sorted(_axes(axes, x.dim()), reverse=True):
        x = x.squeeze(ax)
    return x


def _unsqueeze(i, a):
    x = i[0]
    axes = _ints(i[1]) if _opt(i, 1) is not None else a["axes"]
    for ax in sorted(_axes(axes, x.dim() + len(axes))):
        x = x.unsqueeze(ax)
    return x


def _reduce(fn):
    def op(i, a):
        x = i[0]
        axes = _ints(i[1]) if _opt(i, 1) is not None else a.get("axes")
        keep = bool(a.get("keepdims", 1))
        if axes is None or len(axes) == 0:
            if a.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.dim()))
        return fn(x, dim=_axes(axes, x.dim()), keepdim=keep)
    return op


def _pad(i, a):
    x = i[0]
    pads = _ints(i[1]) if len(i) > 1 and i[1] is not None else a["pads"]
    value = float(i[2]) if _opt(i, 2) is not None else float(a.get("value", 0.0))
    mode = _str(a, "mode", "constant")
    rank = x.dim()
    axes = _ints(i[3]) if _opt(i, 3) is not None else list(range(rank))
    begin, end = pads[:len(axes)], pads[len(axes):]
    full = [0] * (2 * rank)
    for ax, b, e in zip(_axes(axes, rank), begin, end):
        full[2 * (rank - 1 - ax)], full[2 * (rank - 1 - ax) + 1] = b, e
    while len(full) > 2 and full[-2:] == [0, 0]:  # torch pads trailing dims first; drop untouched leading ones
        full = full[:-2]
    torch_mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(mode)
    if torch_mode is None:
        raise ModelContractError(f"Pad mode {mode} is not supported by the torch runner")
    return F.pad(x, full, mode=torch_mode, value=value) if torch_mode == "constant" else F.pad(x, full, mode=torch_mode)


def _clip(i, a):
    x = i[0]
    lo = _opt(i, 1) if len(i) > 1 else a.get("min")
    hi = _opt(i, 2) if len(i) > 2 else a.get("max")
    return torch.clamp(x, min=None if lo is None else float(lo), max=None if hi is None else float(hi))


def _batch_norm(i, a):
    x, scale, bias, mean, var = i[:5]
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, a.get("epsilon", 1e-5))


def _instance_norm(i, a):
    x, scale, bias = i[:3]
    return F.instance_norm(x, weight=scale, bias=bias, eps=a.get("epsilon", 1e-5))


def _gather(i, a):
    x, idx = i[0], i[1].to(torch.int64)
    axis = _axes([a.get("axis", 0)], x.dim())[0]
    idx = torch.where(idx < 0, idx + x.shape[axis], idx).to(x.device)
    picked = torch.index_select(x, axis, idx.reshape(-1))
    return picked.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1:]))


def _variadic(fn):
    def op(i, a):
        out = i[0]
        for t in i[1:]:
            out = fn(out, t)
        return out
    return op


def _matched(fn):
    """A binary op whose operands may mix CPU integer constants and device tensors."""
    def op(i, a):
        x, y = i[0], i[1]
        if x.device != y.device:
            if x.dim() == 0 or x.device.type == "cpu" and x.numel() == 1:
                x = x.to(y.device)
            else:
                y = y.to(x.device)
        return fn(x, y)
    return op


OPS: dict[str, Callable] = {
    "Conv": lambda i, a: _conv(i[0], i[1], _opt(i, 2), a),
    "ConvTranspose": lambda i, a: _conv_transpose(i[0], i[1], _opt(i, 2), a),
    "Gemm": _gemm,
    "MatMul": lambda i, a: torch.matmul(i[0], i[1]),
    "Add": _matched(torch.add), "Sub": _matched(torch.sub), "Mul": _matched(torch.mul),
    "Div": _matched(lambda x, y: torch.div(x, y, rounding_mode="trunc") if not x.is_floating_point() else x / y),
    "Pow": _matched(torch.pow),
    "Max": _variadic(torch.maximum), "Min": _variadic(torch.minimum), "Sum": _variadic(torch.add),
    "Neg": lambda i, a: -i[0], "Abs": lambda i, a: i[0].abs(), "Sqrt": lambda i, a: i[0].sqrt(),
    "Exp": lambda i, a: i[0].exp(), "Log": lambda i, a: i[0].log(), "Reciprocal": lambda i, a: i[0].reciprocal(),
    "Floor": lambda i, a: i[0].floor(), "Ceil": lambda i, a: i[0].ceil(),
    "Relu": lambda i, a: F.relu(i[0]), "LeakyRelu": lambda i, a: F.leaky_relu(i[0], a.get("alpha", 0.01)),
    "Sigmoid": lambda i, a: torch.sigmoid(i[0]), "Tanh": lambda i, a: torch.tanh(i[0]),
    "Elu": lambda i, a: F.elu(i[0], a.get("alpha", 1.0)), "Softmax": lambda i, a: torch.softmax(i[0], a.get("axis", -1)),
    "Clip": _clip, "Identity": lambda i, a: i[0], "Dropout": lambda i, a: i[0],
    "Transpose": lambda i, a: i[0].permute(a["perm"]) if "perm" in a else i[0].permute(*reversed(range(i[0].dim()))),
    "Reshape": lambda i, a: _reshape(i[0], i[1], a),
    "Flatten": lambda i, a: i[0].reshape(int(np.prod(i[0].shape[:a.get("axis", 1)])), -1),
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Concat": lambda i, a: torch.cat([t.to(i[0].device) for t in i], dim=a["axis"]),
    "Split": _split, "Slice": _slice,
    "Gather": _gather,
    "Shape": lambda i, a: torch.tensor(list(i[0].shape)[a.get("start", 0):a.get("end", None)], dtype=torch.int64),
    "DepthToSpace": lambda i, a: _depth_to_space(i[0], a),
    "SpaceToDepth": lambda i, a: _space_to_depth(i[0], a),
    "Resize": _resize,
    "Upsample": lambda i, a: _resize([i[0], None, i[1]], a),
    "Pad": _pad,
    "ReduceMean": _reduce(torch.mean), "ReduceSum": _reduce(torch.sum),
    "ReduceMax": _reduce(lambda x, dim, keepdim: torch.amax(x, dim=dim, keepdim=keepdim)),
    "ReduceMin": _reduce(lambda x, dim, keepdim: torch.amin(x, dim=dim, keepdim=keepdim)),
    "BatchNormalization": _batch_norm, "InstanceNormalization": _instance_norm,
    "Expand": lambda i, a: i[0] * torch.ones(_ints(i[1]), dtype=i[0].dtype, device=i[0].device),
    "Tile": lambda i, a: i[0].repeat(_ints(i[1])),
}
_SPECIAL = {"Constant", "Cast", "CastLike", "ConstantOfShape"}  # handled in OnnxModule (need dtypes)
# Inputs read on the host (scales, sizes, bounds): their constants stay CPU float32 tensors, so the
# forward never reads a GPU value (a read would synchronise and break CUDA graph capture).
_HOST_INPUTS = {("Resize", 1), ("Resize", 2), ("Resize", 3), ("Upsample", 1), ("Clip", 1), ("Clip", 2), ("Pad", 2)}


def _attrs(node) -> dict:
    from onnx import helper, numpy_helper

    out = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        if attr.name == "value" and node.op_type in ("Constant", "ConstantOfShape"):
            value = numpy_helper.to_array(value)
        out[attr.name] = value
    out["_outputs"] = len(node.output)
    return out


def _tensor(array: np.ndarray) -> torch.Tensor:
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return torch.from_numpy(np.array(array, copy=True))


class OnnxModule(nn.Module):
    """An ONNX graph evaluated with torch operations. Float constants are buffers (they follow
    ``.to(device, dtype)``); integer constants and the float constants read on the host (Resize
    scales, Clip bounds) stay CPU tensors."""

    def __init__(self, graph, opset: int) -> None:
        super().__init__()
        from onnx import numpy_helper

        self.opset = opset
        self.input_names = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
        self.output_names = [o.name for o in graph.output]
        self._slots: dict[str, str] = {}  # value name -> buffer attribute name (float constants)
        self._host_constants: dict[str, torch.Tensor] = {}
        self._host_names = {name for node in graph.node for i, name in enumerate(node.input)
                            if (node.op_type, i) in _HOST_INPUTS}
        unsupported = sorted({n.op_type for n in graph.node if n.op_type not in OPS and n.op_type not in _SPECIAL})
        if unsupported:
            raise ModelContractError(f"the torch runner does not implement the ONNX operator(s) {', '.join(unsupported)}; "
                                     "run this model with an ONNX Runtime provider instead")
        for init in graph.initializer:
            self._set_constant(init.name, _tensor(numpy_helper.to_array(init)))
        self.nodes: list[tuple[str, list[str], list[str], dict]] = []
        for node in graph.node:
            attrs = _attrs(node)
            if all(name == "" or self._is_constant(name) for name in node.input):
                outputs = self._evaluate(node.op_type, [self._constant(n) for n in node.input], attrs, fold=True)
                for name, value in zip(node.output, outputs):
                    self._set_constant(name, value)
            else:
                self.nodes.append((node.op_type, list(node.input), list(node.output), attrs))

    @classmethod
    def load(cls, path: str | Path) -> OnnxModule:
        """Read an ONNX file (weights included) into a module in eval mode; ModelContractError if it cannot."""
        import onnx

        try:
            proto = onnx.load(str(path))
        except Exception as exc:  # onnx raises DecodeError and others for non-ONNX bytes
            raise ModelContractError(f"{path} is not an ONNX model ({type(exc).__name__}: {exc})") from exc
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 17)
        return cls(proto.graph, opset).eval()

    # constants ---------------------------------------------------------------------------------
    def _is_constant(self, name: str) -> bool:
        return name in self._slots or name in self._host_constants

    def _constant(self, name: str):
        if name == "":
            return None
        if name in self._slots:
            return getattr(self, self._slots[name])
        return self._host_constants[name]

    def _set_constant(self, name: str, value: torch.Tensor) -> None:
        if value.is_floating_point() and name not in self._host_names:
            slot = f"c{len(self._slots)}"
            self.register_buffer(slot, value.float() if value.dtype == torch.float64 else value, persistent=True)
            self._slots[name] = slot
        else:
            self._host_constants[name] = value.float() if value.dtype == torch.float64 else value

    @property
    def compute_dtype(self) -> torch.dtype:
        """The floating dtype the module computes in (that of its float constants; float32 if none)."""
        return next((b.dtype for b in self.buffers()), torch.float32)

    # evaluation --------------------------------------------------------------------------------
    def _evaluate(self, op: str, inputs: list, attrs: dict, fold: bool = False) -> tuple:
        if op == "Constant":
            if "value" in attrs:
                value = _tensor(attrs["value"])
            elif "value_float" in attrs:
                value = torch.tensor(attrs["value_float"], dtype=torch.float32)
            elif "value_floats" in attrs:
                value = torch.tensor(attrs["value_floats"], dtype=torch.float32)
            elif "value_int" in attrs:
                value = torch.tensor(attrs["value_int"], dtype=torch.int64)
            else:
                value = torch.tensor(attrs["value_ints"], dtype=torch.int64)
            return (value,)
        if op in ("Cast", "CastLike"):
            x = inputs[0]
            target = attrs["to"] if op == "Cast" else None
            dtype = (_FLOAT_TYPES.get(target) or _INT_TYPES.get(target)) if op == "Cast" else inputs[1].dtype
            if dtype is None:
                raise ModelContractError(f"Cast to ONNX type {target} is not supported by the torch runner")
            if dtype.is_floating_point:
                # folded at load: keep float32 so .to(dtype) later chooses the precision; at run time: compute dtype
                dtype = torch.float32 if fold else self.compute_dtype
            return (x.to(dtype),)
        if op == "ConstantOfShape":
            value = attrs.get("value", np.zeros(1, np.float32))
            fill = torch.from_numpy(np.asarray(value).reshape(-1)[:1].copy())
            dtype = fill.dtype if not fill.is_floating_point() or fold else self.compute_dtype
            return (torch.full(_ints(inputs[0]), fill.item(), dtype=dtype),)
        out = OPS[op](inputs, attrs)
        return out if isinstance(out, tuple) else (out,)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict[str, torch.Tensor | None] = dict(zip(self.input_names, inputs))
        for name, slot in self._slots.items():
            env[name] = getattr(self, slot)
        env.update(self._host_constants)
        env[""] = None
        for op, names_in, names_out, attrs in self.nodes:
            values = self._evaluate(op, [env[n] for n in names_in], attrs)
            env.update(zip(names_out, values))
        return tuple(env[n] for n in self.output_names)
