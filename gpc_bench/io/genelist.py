"""Gene panels and gene lists as published: text (one ID a line), JSON or YAML."""

from __future__ import annotations

import json
from pathlib import Path

from .._errors import InputError, examples

_FORMS = "one ID a line, a JSON list or {'genes': [...]}, or YAML 'genes:' followed by '- ID' lines"


def read_gene_list(path: str | Path, what: str = "gene list") -> list[str]:
    """Genes from a text file (one ID a line; ``#`` comments), JSON (a list or ``{"genes": [...]}``)
    or YAML (a list or ``genes: [...]``, e.g. the published ``stpath_genes.yaml``).

    A text file that is YAML in disguise (first line ``genes:``) is read as YAML, so that the key
    line is never taken for a gene. Repeated genes, empty lists and unreadable files are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} not found", f"give a file: {_FORMS}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{what} {path} cannot be read as text: {err}", f"give {_FORMS}") from None
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if path.suffix in (".yaml", ".yml") or first.rstrip().endswith(":") or first.startswith("genes:"):
        genes = _structured(path, text, "YAML", what)
    elif path.suffix == ".json" or first.startswith(("[", "{")):
        genes = _structured(path, text, "JSON", what)
    else:
        genes = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not all(isinstance(g, str | int) and not isinstance(g, bool) for g in genes):
        raise InputError(f"{what} {path}: entries must be gene IDs (strings)", f"give {_FORMS}")
    genes = [str(g).strip() for g in genes]
    if not genes:
        raise InputError(f"{what} {path} is empty", f"give {_FORMS}")
    if len(set(genes)) < len(genes):
        seen, dup = set(), []
        for g in genes:
            if g in seen:
                dup.append(g)
            seen.add(g)
        raise InputError(f"{what} {path} repeats gene(s) {examples(sorted(set(dup)))}", "list each gene once")
    return genes


def _structured(path: Path, text: str, kind: str, what: str) -> list:
    try:
        if kind == "JSON":
            obj = json.loads(text)
        else:
            import yaml

            obj = yaml.safe_load(text)
    except Exception as err:  # json.JSONDecodeError, yaml.YAMLError
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{what} {path} is not valid {kind}: {msg}", f"give {_FORMS}") from None
    genes = obj.get("genes") if isinstance(obj, dict) else obj
    if not isinstance(genes, list):
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise InputError(
            f"{what} {path}: expected a {kind} list or a 'genes' list, found {keys}", f"give {_FORMS}"
        )
    return genes
