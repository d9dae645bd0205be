"""Files from the Hugging Face Hub, through `huggingface_hub`: its shared cache, resumable downloads,
`HF_ENDPOINT` mirrors, `HF_HUB_OFFLINE`, tokens for gated repositories (`HF_TOKEN`, `hf auth login`).

The Hub reports the SHA256 of every large (LFS) file; `huggingface_hub` stores the file under that name
in its cache, and keras_clip checks the bytes against it while converting the checkpoint.
"""

import os
import re

from keras_clip.errors import DownloadError
from keras_clip.version import __version__

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _offline():
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def hub_sha256(path):
    """The SHA256 the Hub reported for a file in `huggingface_hub`'s cache (its blob's name), or None."""
    name = os.path.basename(os.path.realpath(path))
    return name if _SHA256.match(name) else None


def download_from_hub(repo_id, file_names, revision=None, verbose=True):
    """The local path of the first of `file_names` that `repo_id` has, downloaded once into the Hub's cache.

    Args:
        repo_id: e.g. "laion/CLIP-ViT-B-32-laion2B-s34B-b79K".
        file_names: candidates in order of preference (e.g. a safetensors file, then a PyTorch one).
        revision: a branch, tag or commit (None: the default branch).
        verbose: show `huggingface_hub`'s progress bars.

    Raises:
        DownloadError: the repository or revision does not exist or is not accessible (gated), none of
            the files is in it, or the network is unreachable / offline mode is on and the cache lacks them.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    bars_were_disabled = are_progress_bars_disabled()
    if not verbose:
        disable_progress_bars()
    not_cached = None
    try:
        for file_name in file_names:
            try:
                return hf_hub_download(
                    repo_id,
                    file_name,
                    revision=revision,
                    # Read at each call (huggingface_hub reads them once, at its import).
                    endpoint=os.environ.get("HF_ENDPOINT"),
                    cache_dir=os.environ.get("HF_HUB_CACHE"),
                    local_files_only=_offline(),
                    library_name="keras_clip",
                    library_version=__version__,
                )
            except LocalEntryNotFoundError:  # not cached, and no network: another candidate may be cached
                not_cached = not_cached or file_name
            except EntryNotFoundError:
                continue
            except (HfHubHTTPError, OSError, ValueError) as error:
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                failed = f"Download of {repo_id}/{file_name} from the Hugging Face Hub failed"
                raise DownloadError(f"{failed}: {message}") from None
    finally:
        if not verbose and not bars_were_disabled:
            enable_progress_bars()
    if not_cached is not None:
        reason = "offline mode (HF_HUB_OFFLINE)" if _offline() else "the Hub cannot be reached"
        raise DownloadError(f"{repo_id}/{not_cached} is not in the Hugging Face cache and {reason}")
    raise DownloadError(f"The Hugging Face Hub repository {repo_id} has none of {', '.join(file_names)}")
