"""Users' workloads: the contract (workloads/spec.py), the registry, the suite loader's
rules for another workload, the training-function policy (policy.Context), code fingerprints in trial
ids, the worker that lacks a package, and the example package (examples/tiny_resnet) end to end on
both executors."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from claimbench.cli import main
from claimbench.errors import SuiteError, UserError
from claimbench.suite import expand, json_schema, load_suite, parse_suite
from claimbench.train.pack import train_pack
from claimbench.train.packing import packable
from claimbench.train.policy.function import Context
from claimbench.train.single import train_trial
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import CHOICES, TrialSpec
from claimbench.workloads import registry
from claimbench.workloads.builtin import shapes
from claimbench.workloads.spec import Data, Param, Workload

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "tiny_resnet"
SUITES = EXAMPLE / "suites"


@pytest.fixture(scope="session")
def tiny_resnet():
    """The example package, installed into this environment (editable, offline) unless it already is."""
    if "tiny_resnet.loop" not in registry.installed():
        pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
        if pip.returncode != 0:
            pytest.skip("pip is not available to install examples/tiny_resnet")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e",
                        str(EXAMPLE)], check=True, capture_output=True)
        sys.path.insert(0, str(EXAMPLE))  # an editable install's path hook loads at interpreter start; new workers have it
    assert {"tiny_resnet.components", "tiny_resnet.loop"} <= set(registry.installed())
    return registry


@pytest.fixture
def fake(monkeypatch):
    """Register workloads in-process: ``fake(workload, code="pkg 1.0 abc")``."""
    def add(w: Workload, code: str = "fakepkg 1.0 0123456789ab") -> Workload:
        monkeypatch.setitem(registry._LOADED, w.name, w)
        real = registry.fingerprint
        monkeypatch.setattr(registry, "fingerprint", lambda name: code if name == w.name else real(name))
        return w
    return add


# ---------------------------------------------------------------- the built-ins' tables

def test_the_builtin_datasets_and_models_are_the_modules_of_their_packages():
    package = ROOT / "claimbench" / "workloads" / "builtin"
    assert set(CHOICES["dataset"]) == {p.stem for p in (package / "datasets").glob("[!_]*.py")} and \
        len(CHOICES["dataset"]) == 12
    assert set(CHOICES["model"]) == {p.stem for p in (package / "models").glob("[!_]*.py")} == \
        {"mlp", "cnn", "rnn", "lstm", "transformer"}
    assert shapes.io_shape(TrialSpec(steps=1, dataset="adding", seq_len=7)) == ((7, 2), 1)
    assert shapes.io_shape(TrialSpec(steps=1, dataset="cifar10")) == ((3, 32, 32), 10)
    assert shapes.io_shape(TrialSpec(steps=1, dataset="", model="")) is None  # another workload's spec


def test_builtins_register_through_the_entry_point():
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points."claimbench.workloads"]' in text and registry.BUILTIN_TARGET in text
    w = registry.get(registry.BUILTIN)
    assert w.builtin and w.level == "builtin" and registry.BUILTIN in registry.installed()


def test_a_suite_naming_an_uninstalled_workload_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('[suite]\nname = "s"\n[workload]\nname = "myteam.resnet"\n[budget]\nsteps = 10\n')
    with pytest.raises(SystemExit) as e:
        main(["run", str(path), "--executor", "local", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err
    assert f"{path}: workload.name" in err and "'myteam.resnet'" in err and "claimbench" in err
    assert 'entry-points."claimbench.workloads"' in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the contract and the loader

def _data(cfg) -> Data:
    g = torch.Generator().manual_seed(cfg.data_seed)
    x = torch.randn(300, 4, generator=g)
    y = (x[:, 0] + cfg["shift"] * x[:, 1] > 0).long()
    return Data(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:], n_outputs=2)


def _model(cfg, data):
    layers = [torch.nn.Linear(data.input_shape[0], cfg.spec.width)]
    if cfg.spec.batchnorm:
        layers.append(torch.nn.BatchNorm1d(cfg.spec.width))
    return torch.nn.Sequential(*layers, torch.nn.ReLU(), torch.nn.Linear(cfg.spec.width, data.n_outputs))


PARAMS = (Param("shift", float, 0.5, low=0.0, high=2.0, data=True), Param("mode", str, "a", choices=("a", "b")))
COMPONENTS = Workload(name="fake.mlp", params=PARAMS, uses=("width", "batchnorm"), data=_data, model=_model)


def _suite(name: str, extra: str = "", budget: str = "steps = 40") -> str:
    return f'[suite]\nname = "s"\nseeds = 2\n[workload]\nname = "{name}"\n{extra}\n[budget]\n{budget}\n'


def test_components_train_with_claimbench_policy_and_never_pack(fake):
    import tomllib

    fake(COMPONENTS)
    raw = tomllib.loads(_suite("fake.mlp", "width = 8\nbatchnorm = true\n[train]\nlr = 0.1\nbatch_size = 20\nevals = 4\n"
                                           "[axes.shift]\nrole = \"scientific\"\nvalues = [0.0, 1.5]"))
    suite = parse_suite(raw, "s.toml", "default")
    specs = expand(suite)
    assert len(specs) == 4 and {s.params["shift"] for s in specs} == {0.0, 1.5}
    assert all(s.workload == "fake.mlp" and s.dataset == "" and s.code == "fakepkg 1.0 0123456789ab" for s in specs)
    assert all(s.params["mode"] == "a" for s in specs)  # a declared default is explicit in every spec
    assert not any(packable(s) for s in specs) and all(packable(s) for s in expand(load_suite("batch_size", "smoke")))
    rec = train_trial(specs[0])
    assert rec.status is TrialStatus.COMPLETED, rec.error
    assert rec.engine == "single" and len(rec.curve) == 5 and rec.metrics["val_acc"] > 0.6
    assert rec.spec["workload"] == "fake.mlp" and json.loads(rec.spec["workload_params"])["shift"] == 0.0
    assert suite.design().constants["workload"] == "fake.mlp"  # the report's "held fixed" names it


@pytest.mark.parametrize("extra, words", [
    ("shift = 3.0", "workload.shift: shift must be >= 0 and <= 2, got 3.0"),
    ('mode = "c"', "workload.mode: mode must be one of a, b"),
    ("depth = 3", "workload.depth: workload 'fake.mlp' (components) does not read depth"),
    ('dataset = "digits"', "does not read dataset"),
    ("[axes.shift]\nrole = \"scientific\"\nvalues = [0.5, -1.0]", "axes.shift.values[1]: shift must be >= 0"),
    ("[tiers.smoke]\nparams = { shiftt = 1.0 }", "unknown parameter 'shiftt'"),
])
def test_declared_parameters_are_validated_with_one_line_errors(fake, extra, words):
    import tomllib

    fake(COMPONENTS)
    with pytest.raises(SuiteError, match="^s.toml: ") as e:
        parse_suite(tomllib.loads(_suite("fake.mlp", extra)), "s.toml", "smoke")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_the_schema_includes_declared_parameters():
    schema = json_schema([COMPONENTS])
    section = schema["properties"]["workload"]["anyOf"][1]
    assert section["properties"]["name"] == {"const": "fake.mlp"}
    assert section["properties"]["shift"] == {"type": "number", "minimum": 0.0, "maximum": 2.0}
    assert section["properties"]["mode"]["enum"] == ["a", "b"] and "depth" not in section["properties"]
    assert "shift" in schema["properties"]["tiers"]["properties"]["ci"]["properties"]["params"]["properties"]
    assert "shift" not in json_schema()["properties"]["tiers"]["properties"]["ci"]["properties"]["params"]["properties"]


def test_workload_contract_errors_name_the_rule():
    with pytest.raises(ValueError, match="give data and model"):
        Workload(name="x", data=_data)
    with pytest.raises(ValueError, match="lr is a reserved name"):
        Workload(name="x", data=_data, model=_model, params=(Param("lr", float, 0.1),))
    with pytest.raises(ValueError, match="uses lr, which it cannot read"):
        Workload(name="x", data=_data, model=_model, uses=("lr",))
    with pytest.raises(ValueError, match="blocks must be >= 1"):
        Param("blocks", int, 0, low=1)


def test_data_from_torch_datasets():
    ds = torch.utils.data.TensorDataset(torch.randn(5, 2), torch.arange(5))
    d = Data.from_datasets(ds, ds, ds, n_outputs=5)
    assert d.x_train.shape == (5, 2) and d.y_test.tolist() == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------- a training function: policy.Context

def _function(losses: list[float], accs: list[float], stop_at: int | None = None):
    """A loop that reports the given train losses and val accuracies at ctx.eval_steps."""
    def train(params, ctx):
        for step, loss, acc in zip(ctx.eval_steps, losses, accs):
            ctx.report(step=step, train_loss=loss, val_loss=loss, val_acc=acc, test_acc=acc - 0.01)
            if ctx.should_stop() or step == stop_at:
                return
    return train


def _loop_spec(fake, train, **kw) -> TrialSpec:
    fake(Workload(name="fake.loop", train=train, uses=("lr",)))
    return TrialSpec(workload="fake.loop", dataset="", model="", steps=40, evals=4, batch_size=10,
                     code="fakepkg 1.0 0123456789ab", **kw)


def test_a_training_function_gets_the_trial_policy(fake):
    rec = train_trial(_loop_spec(fake, _function([2.0, 1.5, 1.0, 0.8, 0.7], [0.1, 0.5, 0.7, 0.9, 0.85]), target=0.6))
    assert rec.status is TrialStatus.COMPLETED and rec.engine == "function", rec.error
    assert [p["step"] for p in rec.curve] == [0, 10, 20, 30, 40] and rec.steps_done == 40
    assert rec.steps_to_target == 20 and rec.examples_to_target == 200 and rec.best_step == 30
    assert rec.metrics["test_acc"] == pytest.approx(0.84) and rec.time_per_step_s > 0


def test_a_training_function_diverges_and_stops_early_by_the_policy(fake):
    diverged = train_trial(_loop_spec(fake, _function([2.0, 1.5, 30.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5])))
    assert diverged.status is TrialStatus.DIVERGED and diverged.diverged_step == 20
    assert "> 10 x initial" in diverged.divergence_reason and diverged.metrics == {}
    nan = train_trial(_loop_spec(fake, _function([2.0, math.nan, 1.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5])))
    assert nan.status is TrialStatus.DIVERGED and nan.diverged_step == 10
    early = train_trial(_loop_spec(fake, _function([2.0, 1.0, 1.0, 1.0, 1.0], [0.1, 0.6, 0.5, 0.4, 0.3]), patience=2))
    assert early.status is TrialStatus.COMPLETED and early.stopped_early and early.steps_done == 30
    assert early.metrics["val_acc"] == 0.6  # restore_best: the best evaluation's metrics


@pytest.mark.parametrize("train, words", [
    (_function([2.0, 1.0], [0.1, 0.2]), "returned at step 10 of 40 before ctx.should_stop()"),
    (lambda params, ctx: None, "returned without calling ctx.report"),
    (lambda params, ctx: ctx.report(step=0, train_loss=1.0, val_loss=1.0), "lacks val_acc"),
    (lambda params, ctx: ctx.report(step=5, train_loss=1.0, val_loss=1.0, val_acc=0.1), "first ctx.report must be at step 0"),
    (lambda params, ctx: 1 / 0, "ZeroDivisionError"),
])
def test_a_training_function_that_breaks_the_contract_fails_with_one_line(fake, train, words):
    rec = train_trial(_loop_spec(fake, train))
    assert rec.status is TrialStatus.FAILED and words in rec.error and "\n" not in rec.error


def test_context_reports_after_the_end_are_ignored():
    from claimbench.train.policy.plan import Plan
    from claimbench.train.policy.state import TrialState

    spec = TrialSpec(workload="x", dataset="", model="", steps=10, evals=1)
    state = TrialState(spec, Plan.of_steps(spec, "classification"), spec.lr)
    ctx = Context(state, {}, torch.device("cpu"))
    ctx.report(step=0, train_loss=1.0, val_loss=1.0, val_acc=0.1)
    ctx.report(step=10, train_loss=0.5, val_loss=0.5, val_acc=0.5)
    assert ctx.should_stop() and state.status is TrialStatus.COMPLETED
    ctx.report(step=11, train_loss=0.5, val_loss=0.5, val_acc=0.9)  # ignored: the trial is done
    assert len(state.curve) == 2


# ---------------------------------------------------------------- code fingerprints and workers

def test_trial_ids_hold_the_code_and_the_baseline_matrix_does_not(monkeypatch):
    from claimbench.check.baseline import matrix_fingerprint

    suite = load_suite("batch_size", "smoke")
    before, matrix = [s.trial_id for s in expand(suite)], matrix_fingerprint(suite)
    edited = dataclasses.replace(suite, code="claimbench 000000000000")
    assert not set(before) & {s.trial_id for s in expand(edited)}
    assert matrix_fingerprint(edited) == matrix
    assert TrialSpec(steps=100).trial_id == "680905e1ae678430"  # no code: the id tests/test_trial.py pins (revision 4)


def test_a_reserved_parameter_name_is_one_line_that_says_to_rename(tmp_path, monkeypatch):
    pkg = tmp_path / "rpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from claimbench.workloads.spec import Param, Workload\n"
        "W = Workload(name='rpkg.w', task='classification', train=lambda p, ctx: None,\n"
        "             params=(Param('seq_len', int, 8),))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint("rpkg.w", "rpkg:W", registry.GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"rpkg.w": ep})
    with pytest.raises(UserError) as e:
        registry.get("rpkg.w")
    text = str(e.value)
    assert "seq_len is a reserved name" in text and "rename it" in text and "install" not in text and "\n" not in text


def test_editing_a_package_source_changes_its_fingerprint(tmp_path, monkeypatch):
    pkg = tmp_path / "fpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text("WIDTH = 8\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint("fpkg.w", "fpkg.model:W", registry.GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: {"fpkg.w": ep})
    first = registry.fingerprint("fpkg.w")
    assert registry.source_files("fpkg.w") == [pkg / "__init__.py", pkg / "model.py"]
    (pkg / "model.py").write_text("WIDTH = 16\n")
    assert registry.fingerprint("fpkg.w") != first and first.startswith("fpkg.w ? ")


def test_a_worker_without_the_package_fails_the_trial_with_one_line_and_the_pack_goes_on():
    ghost = TrialSpec(workload="ghost.model", dataset="", model="", steps=5, code="ghost-pkg 2.1 abcdef012345")
    builtin = TrialSpec(dataset="teacher", n_samples=300, width=8, depth=1, steps=5, evals=1)
    bad, good = train_pack([ghost, builtin])
    assert bad.status is TrialStatus.FAILED and "\n" not in bad.error
    assert "ghost-pkg 2.1" in bad.error and "'ghost.model'" in bad.error and "runtime-env" in bad.error
    assert good.status is TrialStatus.COMPLETED


def test_a_worker_with_other_code_than_the_driver_fails_the_trial(fake):
    fake(COMPONENTS, code="fakepkg 1.1 ffffffffffff")
    spec = TrialSpec(workload="fake.mlp", dataset="", model="", steps=5, workload_params='{"mode":"a","shift":0.5}',
                     code="fakepkg 1.0 0123456789ab")
    rec = train_trial(spec)
    assert rec.status is TrialStatus.FAILED and "is fakepkg 1.1 ffffffffffff, not the driver's fakepkg 1.0" in rec.error


def test_a_code_change_retrains_on_check_and_check_says_so(tiny_resnet, one_thread, tmp_path, monkeypatch, capsys):
    """Baseline, then a changed fingerprint (what editing the model does): check retrains every trial, says
    why and how many, and compares with the baseline instead of refusing it."""
    suite, out, base = str(SUITES / "tiny_resnet_loop.toml"), str(tmp_path / "runs"), str(tmp_path / "b.json")
    # the changed fingerprint below is this process's alone: train here, not in a child process that would see
    # the package's real code and (rightly) refuse trials fingerprinted otherwise
    monkeypatch.setattr("claimbench.runner.base.needs_child", lambda spec: False)
    main(["baseline", suite, "--tier", "smoke", "-o", base, "--executor", "local", "--out", out, "--quiet"])
    capsys.readouterr()
    real = registry.fingerprint
    monkeypatch.setattr(registry, "fingerprint",
                        lambda name: real(name).rsplit(" ", 1)[0] + " 0123456789ab" if name == "tiny_resnet.loop"
                        else real(name))
    try:  # exit 0 (every claim holds) or 1 (a regression); never 2 (a refused baseline)
        main(["check", suite, "--baseline", base, "--tier", "smoke", "--executor", "local", "--out", out, "--quiet"])
        code = 0
    except SystemExit as e:
        code = e.code
    text = capsys.readouterr().out
    assert code in (0, 1)
    assert "tiny_resnet_loop: 8 trials retrain: the code of workload tiny_resnet.loop changed" in text
    assert "8 trials, reused 0, trained 8 now" in text
    try:  # the same code again: every trial reused, nothing said about code
        main(["check", suite, "--baseline", base, "--tier", "smoke", "--executor", "local", "--out", out, "--quiet"])
    except SystemExit:
        pass
    text = capsys.readouterr().out
    assert "8 trials, reused 8, trained 0 now" in text and "trials retrain:" not in text


# ---------------------------------------------------------------- the example package, end to end

def _run(executor: str, out: Path, capsys) -> str:
    main(["run", str(SUITES / "all.toml"), "--tier", "smoke", "--executor", executor, "--out", str(out), "--quiet"])
    return capsys.readouterr().out


def _check_example_run(out: Path, text: str) -> None:
    from claimbench.api import run_frame
    from claimbench.store.rundir import RunStore
    from claimbench.suite import recorded_suite

    assert "tiny_resnet [smoke]: 16 trials (16 completed); 16 new; 0 reused" in text
    assert "tiny_resnet_loop [smoke]: 8 trials (8 completed); 8 new; 0 reused" in text
    for name, engine in (("tiny_resnet", "single"), ("tiny_resnet_loop", "function")):
        store = RunStore(out / name)
        records = store.records()
        assert {r.engine for r in records} == {engine} and all(r.spec["code"].startswith("tiny-resnet 0.1.0 ")
                                                              for r in records)
        frame = run_frame(store, recorded_suite(store.info()))
        assert set(frame["blocks"]) == {1} and set(frame["workload"]) == {f"tiny_resnet.{'components' if engine == 'single' else 'loop'}"}
        assert store.info().suite["workload"]["package"] == "tiny-resnet"
    html = (out / "report.html").read_text()
    assert "workload=tiny_resnet.components" in html and "held fixed: dataset" not in html
    assert "<code>tiny-resnet</code></th><td class=\"mono\">0.1.0</td>" in html  # the environment names the package


def test_example_smoke_tier_on_the_local_executor(tiny_resnet, one_thread, tmp_path, capsys):
    _check_example_run(tmp_path / "run", _run("local", tmp_path / "run", capsys))


@pytest.mark.ray
def test_example_smoke_tier_on_the_embedded_ray(tiny_resnet, tmp_path, capsys):
    """The package's own loop on Ray actors (its workers import the entry point, as a cluster's would); the
    components go through the same worker path (registry.get in loop.train_trial), run above in-process."""
    from claimbench.store.rundir import RunStore

    out = tmp_path / "run"
    main(["run", str(SUITES / "tiny_resnet_loop.toml"), "--tier", "smoke", "--out", str(out), "--quiet"])
    assert "tiny_resnet_loop [smoke]: 8 trials (8 completed); 8 new; 0 reused" in capsys.readouterr().out
    records = RunStore(out).records()
    assert {r.engine for r in records} == {"function"} and all(r.node_id for r in records)  # trained by actors
