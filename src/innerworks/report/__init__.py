"""Reports: figures and the self-contained HTML report, built from saved ``results.json`` files."""
