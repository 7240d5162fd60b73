"""Data parallelism: a few steps on 2 (host) devices match 1 device, loss and parameters.

Runs in a subprocess because the device count is fixed when jax starts
(XLA_FLAGS=--xla_force_host_platform_device_count=2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, jax, numpy as np
from harness import parallel, plan
from harness.training import TrainState

assert len(jax.devices()) == 2, jax.devices()
out = {}
for n in (1, 2):
    run_plan = plan.build("fashion_mnist_resnet", "nesterov", budget=3, devices=jax.devices()[:n])
    wl, first, mesh = run_plan.workload, run_plan.phases[0], run_plan.mesh
    data = wl.load_data(None)
    params, model_state, _ = wl.init(jax.random.PRNGKey(0))
    state = parallel.put_replicated(TrainState(params, model_state, run_plan.submission.init(
        params, first.hparams, first.ctx)), mesh)
    step, traced = run_plan.jit_train_step(0), run_plan.traced_arguments(0)
    batches = wl.train_batches(data, 0)
    losses = []
    for i in range(3):
        batch = parallel.put_batch(next(batches), mesh)
        assert len(batch["x"].sharding.device_set) == n
        state, m = step(state, batch, jax.random.PRNGKey(1), np.int32(i), traced)
        losses.append(float(m["loss"]) / float(m["count"]))
    out[n] = {"losses": losses, "params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(state.params)],
              "bn": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(state.model_state)]}
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.cli
def test_two_devices_match_one_device() -> None:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    one, two = out["1"], out["2"]
    np.testing.assert_allclose(one["losses"], two["losses"], rtol=1e-5)
    assert one["losses"][0] != one["losses"][2]  # the steps did train
    for a, b in zip(one["params"] + one["bn"], two["params"] + two["bn"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
