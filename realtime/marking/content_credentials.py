"""C2PA content credentials for the video files swapcam writes, signed offline (c2pa-python).

``sign_video(path, record)`` embeds a C2PA manifest into a finished .mp4/.mov: created by swapcam,
digital source type *trained algorithmic media*, and an ``org.swapcam.model`` assertion with the
model's identity, consent record and fingerprint (the same fingerprint the watermark carries).
``read_credentials(path)`` reads one back for ``swapcam verify``.

Signing credentials are made locally on first use, in ``credentials_dir()`` (``$SWAPCAM_CONFIG_DIR``,
else ``$XDG_CONFIG_HOME/swapcam``, else ``~/.config/swapcam``): a local root certificate and an
ES256 signing certificate issued by it, both saying in their names that they are self-signed and
untrusted. (c2pa-python 0.38 refuses to sign with a lone self-signed certificate: "Signature: the
certificate is invalid"; a locally made root above it is accepted.) A validator therefore reports
``signingCredential.untrusted``: the manifest says what made the file and proves the file is
unchanged since, not who the signer is. Nothing is fetched from the network (no timestamp authority).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

SIGNABLE_SUFFIXES = {".mp4", ".mov", ".m4v"}
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ASSERTION_LABEL = "org.swapcam.model"
LEAF_NAME = "swapcam self-signed (not a trusted identity)"
ROOT_NAME = "swapcam local root (self-signed, untrusted)"


class CredentialsUnavailable(RuntimeError):
    """Content credentials cannot be written here (library missing, unsupported file)."""


@dataclass(frozen=True)
class SigningFiles:
    key: Path  # PEM, PKCS#8, mode 0600
    chain: Path  # PEM: the signing certificate, then the local root


def credentials_dir() -> Path:
    base = os.environ.get("SWAPCAM_CONFIG_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "swapcam"


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "swapcam local install")])


def _key_usage(sign: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not sign, crl_sign=not sign,
                         encipher_only=False, decipher_only=False)


def ensure_signing_files(folder: Path | None = None) -> SigningFiles:
    """The local signing key and certificate chain, made on first use (ES256, ten years)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from realtime.util.atomic_files import atomic_path

    folder = Path(folder) if folder else credentials_dir() / "c2pa"
    files = SigningFiles(folder / "signing_key.pem", folder / "signing_chain.pem")
    if files.key.is_file() and files.chain.is_file():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=3650)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(_name(ROOT_NAME)).issuer_name(_name(ROOT_NAME))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(_name(LEAF_NAME)).issuer_name(_name(ROOT_NAME))
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    with atomic_path(files.key) as tmp:
        tmp.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        os.chmod(tmp, 0o600)
    with atomic_path(files.chain) as tmp:
        tmp.write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    return files


def manifest(record, title: str, version: str) -> dict:
    """The manifest definition for a file made with the model described by ``record`` (a Provenance)."""
    return {
        "claim_generator_info": [{"name": "swapcam", "version": version}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
                "softwareAgent": {"name": "swapcam", "version": version},
                "description": "face swapped by a trained model (real-time face swap)"}]}},
            {"label": ASSERTION_LABEL, "data": {
                "model": record.path.name if record.path else None,
                "identity": record.identity, "consent": record.consent,
                "fingerprint_sha256_prefix": record.fingerprint.hex()}},
        ],
    }


def sign_video(path: str | Path, record, folder: Path | None = None) -> Path:
    """Embed a signed C2PA manifest into the video at ``path`` (replaced atomically); returns it."""
    try:
        import c2pa
    except ImportError as exc:
        raise CredentialsUnavailable(f"c2pa-python is not installed ({exc})") from exc
    from importlib import metadata

    from realtime.util.atomic_files import atomic_path

    path = Path(path)
    if path.suffix.lower() not in SIGNABLE_SUFFIXES:
        raise CredentialsUnavailable(f"{path.name}: C2PA is written into {', '.join(sorted(SIGNABLE_SUFFIXES))} "
                                     "files only")
    files = ensure_signing_files(folder)
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, files.chain.read_bytes(), files.key.read_bytes(), None)
    try:
        version = metadata.version("swapcam")
    except metadata.PackageNotFoundError:
        version = "unknown"
    signer = c2pa.Signer.from_info(info)
    try:
        with atomic_path(path) as tmp, c2pa.Builder(manifest(record, path.name, version)) as builder:
            builder.sign_file(str(path), str(tmp), signer)
    finally:
        signer.close()
    return path


def read_credentials(path: str | Path) -> dict | None:
    """What a file's C2PA manifest says, or None when it has none (or c2pa-python is absent).

    Keys: summary (one line), generator, digital_source_type, model (our assertion), signer,
    validation_state, failures (validation codes).
    """
    try:
        import c2pa
    except ImportError:
        return None
    try:
        with c2pa.Reader(str(path)) as reader:
            store = json.loads(reader.json())
    except Exception:  # no manifest, or a format c2pa does not read: both mean "no credentials"
        return None
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    if not active:
        return None
    assertions = {a.get("label"): a.get("data") for a in active.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}).get("actions", [])
    source_types = [a.get("digitalSourceType") for a in actions if a.get("digitalSourceType")]
    generator = ", ".join(g.get("name", "?") for g in active.get("claim_generator_info", []))
    signer = (active.get("signature_info") or {}).get("common_name")
    failures = [f.get("code") for f in (store.get("validation_results", {}).get("activeManifest", {})
                                        .get("failure", []))]
    model = assertions.get(ASSERTION_LABEL)
    state = store.get("validation_state")
    summary = (f"made by {generator or '?'}; source type {(source_types or ['?'])[0].rsplit('/', 1)[-1]}; "
               + (f"model fingerprint {model.get('fingerprint_sha256_prefix')}, identity {model.get('identity')}; "
                  if model else "")
               + f"signed by '{signer}'; validation {state}"
               + (f" ({', '.join(failures)})" if failures else ""))
    return {"summary": summary, "generator": generator, "digital_source_type": source_types, "model": model,
            "signer": signer, "validation_state": state, "failures": failures}
