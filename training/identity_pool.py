"""Training data of many people for the pretrained base (``training.base``): who is who, each person's
reference, and samples that teach the target decoder to take identity from the reference.

A reference-prior model's target (src) decoder reads two things: the code of the input face and the
target's reference warped onto that face's mesh. Trained on one person (DeepFaceLab's way) it learns that
person; trained on many people, each with their own reference, it becomes a *generic* reference-guided
decoder that fine-tuning only has to specialise. The known failure of such pretraining is that, rebuilding
each face from its own code, the decoder learns to copy the input face, and a swap then keeps the user's
identity. Two things here work against that:

- **pasted skin** (``cross_identity``): with that probability a src sample's *input* is the face with
  another person's skin pasted on (that person's face warped onto this face's mesh by the same mesh warp,
  colour-matched, eyes and mouth opening kept from the face itself), while the target stays the real face
  and the prior is the person's own reference: the code then carries someone else's features, so the only
  way to rebuild the target is to read identity from the prior, and eyes, mouth and pose from the code;
- **reference jitter** (``reference_jitter``): the prior gets its own colour jitter, so light and colour
  come from the code and texture from the prior.

Facesets are grouped into people by a rule (``group_records``); the plan (``PoolPlan``) names the facesets,
which side each may serve (src: a person whose face the decoder is taught to draw; dst: faces the model
reads and the dst decoder rebuilds; donors of pasted skin are dst-side use), and their credits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from realtime.face.regions import LEFT_EYE, RIGHT_EYE, face_region, mouth_hole
from realtime.merging.color_transfer import rct
from realtime.swap.mesh_warp import MeshWarp
from realtime.swap.reference_prior import Reference, ReferencePrior
from training.dataset import AugmentConfig, FaceSource, hsv_apply, hsv_draw, make_sample
from training.faceset import Faceset, FacesetError

GROUP_RULES = ("one", "per_file", "prefix")


def person_of(record, rule: str) -> str:
    """The person a face belongs to: ``one`` (the whole faceset is one person), ``per_file`` (every source
    image is another person), ``prefix`` (the source file's stem up to its first '_': London Set's
    ``063_03.jpg`` and ``063_08.jpg`` are one sitter)."""
    if rule == "one":
        return ""
    stem = Path(record.source).stem
    if rule == "per_file":
        return stem
    if rule == "prefix":
        return stem.split("_")[0]
    raise ValueError(f"unknown grouping rule {rule!r}; choose one of {', '.join(GROUP_RULES)}")


def group_records(faceset: Faceset, rule: str) -> dict[str, list[int]]:
    """{person: indices into ``faceset.records``}, in manifest order."""
    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(faceset.records):
        groups.setdefault(person_of(rec, rule), []).append(i)
    return groups


@dataclass(frozen=True)
class PoolEntry:
    """One faceset of the plan: where it is, which sides it may serve, how faces group into people,
    its credit, and its weight among the facesets of a side (default: its number of people, src; faces, dst)."""

    name: str
    faceset: str
    roles: tuple[str, ...]
    group: str = "one"
    credit: str = ""
    src_weight: float | None = None
    dst_weight: float | None = None

    @classmethod
    def from_dict(cls, d: dict, root: Path) -> PoolEntry:
        roles = tuple(d["roles"])
        bad = set(roles) - {"src", "dst"}
        if bad or not roles:
            raise ValueError(f"plan entry {d.get('name')!r}: roles must be among src, dst (got {list(roles)})")
        if d.get("group", "one") not in GROUP_RULES:
            raise ValueError(f"plan entry {d.get('name')!r}: group must be one of {', '.join(GROUP_RULES)}")
        path = Path(d["faceset"])
        return cls(name=d["name"], faceset=str(path if path.is_absolute() else root / path), roles=roles,
                   group=d.get("group", "one"), credit=d.get("credit", ""), src_weight=d.get("src_weight"),
                   dst_weight=d.get("dst_weight"))


@dataclass(frozen=True)
class PoolPlan:
    """The pretraining data: facesets with roles and credits, and the pool's own augmentation."""

    entries: tuple[PoolEntry, ...]
    cross_identity: float = 0.5
    reference_jitter: float = 0.5
    left_out: tuple[str, ...] = ()  # people/clips kept out on purpose (recorded in the base's metadata)

    @classmethod
    def load(cls, path: str | Path, root: str | Path | None = None) -> PoolPlan:
        """Read a plan JSON; relative faceset paths are resolved against ``root`` (default: the plan's folder)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise FacesetError(f"cannot read the pretraining plan {path}: {exc}") from exc
        base = Path(root) if root is not None else path.parent
        entries = tuple(PoolEntry.from_dict(e, base) for e in data["facesets"])
        if not any("src" in e.roles for e in entries) or not any("dst" in e.roles for e in entries):
            raise FacesetError(f"{path}: the plan needs at least one src and one dst faceset")
        return cls(entries, float(data.get("cross_identity", 0.5)), float(data.get("reference_jitter", 0.5)),
                   tuple(data.get("left_out", ())))


@dataclass
class Person:
    """One src person: their faces (indices into ``source``) with meshes, and their reference's warp."""

    name: str
    source: FaceSource
    meshes: dict[str, np.ndarray]
    indices: np.ndarray
    reference: Reference
    prior: ReferencePrior = field(repr=False, default=None)

    def __post_init__(self) -> None:
        self.index_set = frozenset(int(i) for i in self.indices)

    def mesh(self, index: int) -> np.ndarray:
        """(478, 2) mesh of face ``index`` in training-resolution pixels."""
        return self.meshes[self.source.records[index].file] * np.float32(self.source.scale)


def choose_reference_among(faceset: Faceset, indices: list[int], meshes: dict[str, np.ndarray]) -> Reference:
    """``training.prior.choose_reference`` over some faces of a faceset (one person's)."""
    from training.prior import choose_reference

    return choose_reference(Faceset(faceset.path, faceset.header, [faceset.records[i] for i in indices]), meshes)


def eye_holes(mesh: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 mask of both eyes' openings (inside the eyelid contours)."""
    mask = np.zeros((size, size), np.float32)
    for ring in (RIGHT_EYE, LEFT_EYE):
        cv2.fillPoly(mask, [np.round(mesh[ring, :2] * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    return mask


def paste_skin(face: np.ndarray, mesh: np.ndarray, donor: np.ndarray, donor_warp: MeshWarp | np.ndarray) -> np.ndarray:
    """``face`` (R, R, 3) float32 BGR [0, 1] with ``donor``'s skin (uint8 aligned crop, same R) warped onto its
    mesh and pasted inside the face region (cut half-way up the forehead), colour-matched to ``face``
    (Reinhard), with the face's own eyes and mouth opening kept; soft edges. mesh: (478, 2) aligned px;
    donor_warp: the donor's ``MeshWarp`` (its building is most of the cost: callers keep it) or its mesh."""
    size = face.shape[0]
    if not isinstance(donor_warp, MeshWarp):
        donor_warp = MeshWarp(donor_warp, size)
    coords = donor_warp.inverse_map(mesh)
    skin = cv2.remap(donor, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    skin *= np.float32(1.0 / 255.0)
    region = face_region(mesh, size, keep=0.5)
    region *= 1.0 - np.maximum(mouth_hole(mesh, size), eye_holes(mesh, size))
    sigma = max(size / 96.0, 1.0)
    weight = cv2.GaussianBlur(region, (0, 0), sigma)[..., None]
    inside = region > 0.5
    if inside.sum() < 16:
        return face
    skin = rct(skin, face, image_mask=inside.astype(np.float32), reference_mask=inside.astype(np.float32))
    return face * (1.0 - weight) + skin * weight


class PoolDataset(Dataset):
    """Sample ``i`` -> a src face of a random person (people weighted by their entry's weight, then alike
    within an entry) with that person's reference prior, possibly with pasted skin as input, and a dst
    face; augmented as ``training.dataset.make_sample``. Keys as ``PairDataset``'s, a function of (seed, i).

    people: the src people; dst: (FaceSource, weight) pairs; donors: (FaceSource, meshes, weight) of the faces
    whose skin may be pasted (faces with a mesh; weights as dst's).
    """

    def __init__(self, people: list[Person], person_weights: np.ndarray, dst: list[tuple[FaceSource, float]],
                 donors: list[tuple[FaceSource, dict[str, np.ndarray], float]], aug: AugmentConfig, seed: int = 0,
                 cross_identity: float = 0.5, reference_jitter: float = 0.5, max_donors: int = 256) -> None:
        self.people, self.aug, self.seed = people, aug, seed
        self.person_p = np.asarray(person_weights, np.float64) / np.sum(person_weights)
        self.dst = [s for s, _ in dst]
        self.dst_p = np.array([w for _, w in dst], np.float64)
        self.dst_p /= self.dst_p.sum()
        self.donors = self._donor_pool(donors, max_donors, seed)
        self._donor_cache: dict[int, tuple[np.ndarray, MeshWarp]] = {}
        self.cross_identity, self.reference_jitter = cross_identity, reference_jitter
        for person in people:
            if person.prior is None:
                person.prior = ReferencePrior(person.reference, person.source.resolution)

    def __len__(self) -> int:
        return 2**62

    def _dst_face(self, rng: np.random.Generator):
        source = self.dst[int(rng.choice(len(self.dst), p=self.dst_p))]
        return source.load(int(rng.integers(len(source))))

    @staticmethod
    def _donor_pool(donors, count: int, seed: int) -> list[tuple[FaceSource, int, np.ndarray]]:
        """``count`` donor faces (source, index, mesh at the source's training resolution) drawn once, by the
        dst weights: a pool this size keeps their mesh warps in memory (building one costs ~70 ms, more than
        the rest of a sample) while still hiding the input's identity behind hundreds of other faces."""
        faces = [[(source, i, meshes[r.file]) for i, r in enumerate(source.records) if r.file in meshes]
                 for source, meshes, _ in donors]
        weights = np.array([w if f else 0.0 for (_, _, w), f in zip(donors, faces)], np.float64)
        if not weights.sum():
            return []
        rng = np.random.default_rng([seed, 7])
        picks = rng.choice(len(donors), size=count, p=weights / weights.sum())
        pool = []
        for k in picks:
            source, index, mesh = faces[k][int(rng.integers(len(faces[k])))]
            pool.append((source, index, mesh * np.float32(source.scale)))
        return pool

    def _donor(self, rng: np.random.Generator, person: Person) -> tuple[np.ndarray, MeshWarp] | None:
        """(uint8 crop, its mesh warp) of a random donor face that is not ``person``'s."""
        if not self.donors:
            return None
        for _ in range(4):
            k = int(rng.integers(len(self.donors)))
            source, index, mesh = self.donors[k]
            if source.faceset.path == person.source.faceset.path and index in person.index_set:
                continue  # the person's own face is no donor
            if k not in self._donor_cache:
                img, _, _ = source.load(index)
                self._donor_cache[k] = ((img * 255.0).round().astype(np.uint8), MeshWarp(mesh, source.resolution))
            return self._donor_cache[k]
        return None

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(i)])
        person = self.people[int(rng.choice(len(self.people), p=self.person_p))]
        index = int(person.indices[rng.integers(len(person.indices))])
        img, mask, em = person.source.load(index)
        mesh = person.mesh(index)
        prior = person.prior(mesh).astype(np.float32) * np.float32(1.0 / 255.0)
        if rng.random() < self.reference_jitter:
            prior = hsv_apply(prior, hsv_draw(rng, self.aug))
        if self.aug.color_transfer > 0 and rng.random() < self.aug.color_transfer:
            ref, ref_mask, _ = self._dst_face(rng)
            img = rct(img, ref, image_mask=mask, reference_mask=ref_mask)
        source = None
        if rng.random() < self.cross_identity:
            donor = self._donor(rng, person)
            if donor is not None:
                source = paste_skin(img, mesh, *donor)
        d_img, d_mask, d_em = self._dst_face(rng)
        out = {}
        for key, value in make_sample(img, mask, em, rng, self.aug, prior, source).items():
            out[f"src_{key}"] = torch.from_numpy(value)
        for key, value in make_sample(d_img, d_mask, d_em, rng, self.aug).items():
            out[f"dst_{key}"] = torch.from_numpy(value)
        return out

    def fixed_batch(self, count: int) -> dict[str, torch.Tensor]:
        """``count`` src faces of different people and ``count`` dst faces, unaugmented (previews)."""
        out: dict[str, list] = {}
        off = AugmentConfig.off()
        picks = np.linspace(0, len(self.people) - 1, count).round().astype(int)
        for k, p in enumerate(picks):
            person = self.people[int(p)]
            index = int(person.indices[0])
            img, mask, em = person.source.load(index)
            prior = person.prior(person.mesh(index)).astype(np.float32) / 255.0
            for key, value in make_sample(img, mask, em, np.random.default_rng(0), off, prior).items():
                out.setdefault(f"src_{key}", []).append(torch.from_numpy(value))
            source = self.dst[k % len(self.dst)]
            d = source.load(int(k * len(source) // count))
            for key, value in make_sample(*d, np.random.default_rng(0), off).items():
                out.setdefault(f"dst_{key}", []).append(torch.from_numpy(value))
        return {k: torch.stack(v) for k, v in out.items()}


@dataclass
class PoolData:
    """The pretraining data of a ``PoolPlan``, opened: the trainer's data for a base (see ``training.trainer``).

    Every faceset must share one face type and crop scale; the training resolution is the first src
    faceset's (faces of other sizes are resized as they load)."""

    plan: PoolPlan
    facesets: dict[str, Faceset]
    reference: Reference | None = None  # the preview's swap row uses the first person's reference
    _people: list | None = None
    _meshes: dict | None = None

    @classmethod
    def open(cls, plan: PoolPlan) -> PoolData:
        facesets = {}
        for entry in plan.entries:
            fs = Faceset.open(entry.faceset)
            if len(fs) == 0:
                raise FacesetError(f"plan entry {entry.name}: {entry.faceset} holds no faces")
            facesets[entry.name] = fs
        first = next(iter(facesets.values()))
        for name, fs in facesets.items():
            if (fs.face_type, fs.crop_scale) != (first.face_type, first.crop_scale):
                raise FacesetError(f"plan entry {name}: {fs.face_type} faces at crop scale {fs.crop_scale:g}; the "
                                   f"others are {first.face_type} at {first.crop_scale:g}: extract them alike")
        return cls(plan, facesets)

    @property
    def _first_src(self) -> Faceset:
        return next(self.facesets[e.name] for e in self.plan.entries if "src" in e.roles)

    @property
    def resolution(self) -> int:
        return self._first_src.resolution

    @property
    def face_type(self) -> str:
        return self._first_src.face_type

    @property
    def crop_scale(self) -> float:
        return self._first_src.crop_scale

    default_identity = "pretrained base (many people)"

    def prepare(self, model_cfg, out: Path, progress: bool) -> None:
        """Meshes of every faceset that serves as src or donor (cached beside each faceset) and every src
        person's reference (frontal, mouth closed, sharp)."""
        from training.faceset_mesh import faceset_meshes

        if not model_cfg.prior:
            raise FacesetError("pretraining a base needs a reference-prior model (--preset prior)")
        self._meshes = {name: faceset_meshes(fs, progress=progress) for name, fs in self.facesets.items()}
        self._people_by_entry = {}
        for entry in self.plan.entries:
            if "src" not in entry.roles:
                continue
            fs, meshes = self.facesets[entry.name], self._meshes[entry.name]
            people = []
            for who, indices in group_records(fs, entry.group).items():
                with_mesh = [i for i in indices if fs.records[i].file in meshes]
                if with_mesh:
                    people.append((f"{entry.name}/{who}" if who else entry.name, with_mesh,
                                   choose_reference_among(fs, with_mesh, meshes)))
            self._people_by_entry[entry.name] = people
        self.reference = next(iter(self._people_by_entry.values()))[0][2]

    def _build_people(self, resolution: int) -> tuple[list[Person], np.ndarray]:
        people, weights = [], []
        for entry in self.plan.entries:
            if "src" not in entry.roles:
                continue
            found = self._people_by_entry[entry.name]
            source = FaceSource(self.facesets[entry.name], resolution)
            share = entry.src_weight if entry.src_weight is not None else float(len(found))
            for name, indices, reference in found:
                people.append(Person(name, source, self._meshes[entry.name], np.array(indices, np.int64), reference))
                weights.append(share / len(found))
        return people, np.array(weights)

    def dataset(self, resolution: int, aug: AugmentConfig, seed: int) -> PoolDataset:
        people, weights = self._build_people(resolution)
        dst, donors = [], []
        for entry in self.plan.entries:
            fs = self.facesets[entry.name]
            if "dst" in entry.roles:
                source = FaceSource(fs, resolution)
                dst.append((source, entry.dst_weight if entry.dst_weight is not None else float(len(fs))))
                donors.append((source, self._meshes[entry.name], dst[-1][1]))
        return PoolDataset(people, weights, dst, donors, aug, seed, self.plan.cross_identity, self.plan.reference_jitter)

    def preview_batch(self, resolution: int, seed: int) -> dict[str, torch.Tensor]:
        return self.dataset(resolution, AugmentConfig.off(), seed).fixed_batch(4)

    def summaries(self) -> list[dict]:
        from training.dataset import faceset_summary

        out = []
        for entry in self.plan.entries:
            fs = self.facesets[entry.name]
            summary = faceset_summary("+".join(entry.roles), fs)
            summary.update(name=entry.name, people=len(group_records(fs, entry.group)), credit=entry.credit)
            del summary["sources"]  # thousands of file names; the credit says where they come from
            out.append(summary)
        return out
