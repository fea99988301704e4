"""Reports: the shared claims format, figures and the HTML report."""

from innerworks.report.claims import Claim, ReproResult, claims_markdown, load_results, write_results

__all__ = ["Claim", "ReproResult", "claims_markdown", "load_results", "write_results"]
