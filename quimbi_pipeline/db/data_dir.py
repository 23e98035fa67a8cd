"""Where the embedded server's data lives: as asked, or out of private folders when root."""

import hashlib
import os
import stat
from pathlib import Path

# Where a root-run data dir goes when the requested one sits under a private folder.
RELOCATED_ROOT = Path("/var/tmp/quimbi-pg")
_SHARED_BITS = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


def resolve_data_dir(requested: Path) -> Path:
    """Return the real data dir for ``requested``, relocating it out of private folders as root.

    As root, pgserver runs postgres as the OS user ``pgserver`` and first chmods every parent of
    the data dir readable and traversable by everyone. Under ``/root`` (or any folder that others
    may not enter) that would silently open the folder up. So the data lives in
    ``/var/tmp/quimbi-pg/<sha1(path)[:12]>`` instead and the requested path becomes a symlink.
    """
    requested = requested.expanduser()
    requested.parent.mkdir(parents=True, exist_ok=True)
    # The parent is resolved but not the path itself, which may already be our symlink.
    location = requested.parent.resolve() / requested.name
    if location.is_symlink():
        target = location.resolve()
        target.mkdir(parents=True, exist_ok=True)
        return target
    private = [p for p in (location.parent, *location.parent.parents) if not _is_shared(p)]
    if not _is_root() or not private:
        location.mkdir(exist_ok=True)
        return location
    if location.is_dir() and any(location.iterdir()):
        raise RuntimeError(
            f"{location} is a data dir under the private folder {private[0]}; running as root, "
            f"pgserver would make that folder readable by everyone. Move the data dir to "
            f"{RELOCATED_ROOT} and leave a symlink, or choose a data dir outside {private[0]}."
        )
    digest = hashlib.sha1(str(location).encode(), usedforsecurity=False).hexdigest()[:12]
    real = RELOCATED_ROOT / digest
    RELOCATED_ROOT.mkdir(parents=True, exist_ok=True)
    RELOCATED_ROOT.chmod(0o755)
    real.mkdir(exist_ok=True)
    if location.is_dir():
        location.rmdir()
    try:
        location.symlink_to(real, target_is_directory=True)
    except FileExistsError:
        # Another process relocated the same path first; its symlink points at the same place.
        if location.resolve() != real:
            raise
    return real


def _is_root() -> bool:
    """Return True when running as root on a POSIX system."""
    return getattr(os, "geteuid", lambda: -1)() == 0


def _is_shared(folder: Path) -> bool:
    """Return True when everyone may already list and enter ``folder``."""
    return folder.stat().st_mode & _SHARED_BITS == _SHARED_BITS
