"""Command line of the wide-network lab (thin: parse arguments, call the library, print).

- ``innerworks wide predict SPEC``: the cluster graph and the predicted exponent s_C.
- ``innerworks wide measure SPEC --widths 64,128,256 --samples S --activation A --depth d``: a width sweep.
- ``innerworks wide list``: the named correlators.
"""

from __future__ import annotations

from pathlib import Path

import typer

from innerworks.errors import InnerworksError

MAX_WIDTH = 1_000_000  # --widths: a width's square must fit in memory
MAX_DEPTH = 1_000  # --depth (hidden layers)
MAX_SAMPLES = 10_000_000  # --samples (initialisations per width)
MAX_D_IN = 100_000  # --d-in
MAX_PROBES = 10_000  # --probes
N_BOOT = (100, 1_000_000)  # --n-boot: fewer than 100 resamples give no usable 95% interval


def _check_measure_options(spec: str, widths: str, *, samples: int, activation: str, depth: int,
                           parameterization: str, bias: bool, d_in: int, probes: int, seed: int, device: str,
                           n_boot: int, method: str) -> list[int]:
    """Check every option of ``wide measure`` before any work (one line naming the option); return the widths."""
    from innerworks.utils.device import resolve_device
    from innerworks.utils.options import check_choice, check_int, check_seed
    from innerworks.wide.estimators import METHODS
    from innerworks.wide.networks import MLPConfig
    from innerworks.wide.spec import resolve
    from innerworks.wide.sweep import parse_widths

    resolve(spec)
    ws = parse_widths(widths)
    if ws[-1] > MAX_WIDTH:
        raise InnerworksError(f"--widths {widths}: widths must be at most {MAX_WIDTH}, got {ws[-1]}")
    check_int(samples, "--samples", lo=2, hi=MAX_SAMPLES)
    check_int(depth, "--depth", lo=1, hi=MAX_DEPTH)
    check_int(d_in, "--d-in", lo=1, hi=MAX_D_IN)
    check_int(probes, "--probes", lo=1, hi=MAX_PROBES)
    check_int(n_boot, "--n-boot", lo=N_BOOT[0], hi=N_BOOT[1])
    check_seed(seed)
    check_choice(method, "--method", METHODS)
    check_choice(parameterization, "--param", ("ntk", "standard"))
    resolve_device(device, "--device")
    MLPConfig(ws[0], depth, d_in, activation, parameterization, bias)  # checks the activation
    return ws


def register(app: typer.Typer, analyze: typer.Typer) -> None:
    """Add the ``wide`` sub-app to ``app``."""
    wide = typer.Typer(no_args_is_help=True, help="Wide-network correlation functions and their width scaling.")
    app.add_typer(wide, name="wide")

    @wide.command("predict")
    def predict_cmd(
        spec: str = typer.Argument(..., help="a spec like 'd2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)' or a name (c3)"),
        activation: str | None = typer.Option(None, "--activation", help="also detect exact zeros for this σ"),
        depth: int = typer.Option(2, "--depth", help="hidden layers (for zero detection)"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Print the cluster graph and the conjectured exponent s_C = n_e + n_o/2 - m/2."""
        from innerworks.utils.options import check_int
        from innerworks.wide.cluster import predict
        from innerworks.wide.networks import MLPConfig

        check_int(depth, "--depth", lo=1, hi=MAX_DEPTH)
        cfg = MLPConfig(width=1, depth=depth, activation=activation) if activation else None
        pred = predict(spec, cfg)
        if as_json:
            import json

            typer.echo(json.dumps(pred.to_dict(), indent=2))
        else:
            typer.echo(pred.describe())

    @wide.command("measure")
    def measure_cmd(
        spec: str = typer.Argument(..., help="a spec or a named correlator (see `innerworks wide list`)"),
        widths: str = typer.Option("64,128,256,512", "--widths", help="comma-separated widths (at least 3)"),
        samples: int = typer.Option(256, "--samples", help="initialisations per width"),
        activation: str = typer.Option("relu", "--activation",
                                       help="linear, relu, tanh, erf, gelu, cubic, quadratic or poly:c0,c1,..."),
        depth: int = typer.Option(2, "--depth", help="hidden layers"),
        parameterization: str = typer.Option("ntk", "--param", help="ntk or standard"),
        bias: bool = typer.Option(False, "--bias", help="add biases"),
        d_in: int = typer.Option(4, "--d-in", help="input dimension"),
        probes: int = typer.Option(1, "--probes", help="Rademacher probes per sample (traces, Frobenius products)"),
        seed: int = typer.Option(0, "--seed"),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N"),
        float64: bool = typer.Option(False, "--float64", help="compute in float64"),
        n_boot: int = typer.Option(2000, "--n-boot", help="bootstrap resamples for the slope CI"),
        method: str = typer.Option("auto", "--method", help="auto (structured where possible), autodiff or generic"),
        out: Path | None = typer.Option(None, "--out", help="write the sweep as JSON into this folder"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
    ) -> None:
        """Estimate SPEC at each width, fit the log-log slope and compare it with the prediction."""
        import torch

        from innerworks.utils.io import check_output_dir, write_json
        from innerworks.wide.sweep import run_sweep

        if out is not None:
            check_output_dir(out, "--out")
        ws = _check_measure_options(spec, widths, samples=samples, activation=activation, depth=depth,
                                    parameterization=parameterization, bias=bias, d_in=d_in, probes=probes,
                                    seed=seed, device=device, n_boot=n_boot, method=method)
        res = run_sweep([spec], ws, activation=activation, depth=depth, num_samples=samples, seed=seed,
                        d_in=d_in, parameterization=parameterization, bias=bias, device=device,
                        dtype=torch.float64 if float64 else torch.float32, probes=probes, n_boot=n_boot,
                        progress=not quiet, method=method)[spec]
        typer.echo(res.table())
        if out is not None:
            write_json(Path(out) / "sweep.json", res.to_dict())
            typer.echo(f"wrote {Path(out) / 'sweep.json'}")

    @wide.command("list")
    def list_cmd() -> None:
        """List the named correlators with their specs and predicted exponents."""
        from innerworks.wide.cluster import predict
        from innerworks.wide.spec import NAMED

        for name, c in NAMED.items():
            p = predict(name)
            zero = "  (≡ 0: odd m)" if p.is_zero else ""
            typer.echo(f"{name:18s} s_C={p.exponent:>3}{zero}  {c.title}\n{'':18s} {c.spec}")
