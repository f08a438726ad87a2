"""Whole pipelines, stock against fastrelu's ReLU swapped in: a scikit-learn
``MLPClassifier`` fit and a PyTorch MLP training step, one group each (the
cases of ``python -m fastrelu bench --pipelines``, fastrelu._pipelines).

Under --benchmark-disable (CI's smoke run: every case once) the fit runs on
200 samples instead of 20,000, so the suite stays quick; the timed runs use
the full data set.
"""
import numpy as np
import pytest

from fastrelu import _pipelines

SMOKE_SAMPLES = 200         # one mini-batch (200) an epoch


def _smoke(config):
    return config.getoption("benchmark_disable", False)


@pytest.fixture(scope="module")
def classification(request):
    """The sklearn pipeline's ``(X, y)``: made once for the module, smaller in smoke mode."""
    pytest.importorskip("sklearn")
    return _pipelines.sklearn_data(
        SMOKE_SAMPLES if _smoke(request.config) else _pipelines.SKLEARN_SAMPLES)


@pytest.mark.parametrize("impl", ["stock", "fastrelu"])
def test_sklearn_mlp_fit(benchmark, classification, impl):
    benchmark.group = "pipeline sklearn MLPClassifier(256, 256) fit, 5 epochs"
    X, y = classification
    fast = impl == "fastrelu"
    # a fit takes about a second at full size: a few rounds, not pytest-benchmark's calibration
    model = benchmark.pedantic(lambda: _pipelines.sklearn_fit(X, y, fast)[0],
                               rounds=3, warmup_rounds=1)
    if fast:    # the swap must not change a bit of the trained model
        assert _pipelines.same_mlp(model, _pipelines.sklearn_fit(X, y, False)[0])


@pytest.mark.parametrize("impl", ["stock", "fastrelu"])
def test_torch_mlp_step(benchmark, impl):
    torch = pytest.importorskip("torch")
    benchmark.group = "pipeline torch MLP 784-512-512-10 training step, batch 256"
    x, target = _pipelines.torch_batch()
    step = _pipelines.torch_trainer(impl == "fastrelu", x, target)
    benchmark(step)
    assert all(torch.isfinite(p).all() for p in step.model.parameters())
    if impl == "fastrelu":
        # the same steps from the same weights train the same model as torch.nn.ReLU
        stock, fast = (_pipelines.torch_trainer(f, x, target) for f in (False, True))
        for _ in range(3):
            stock()
            fast()
        assert _pipelines.same_torch_model(stock.model, fast.model)
        assert not np.array_equal(stock.model[0].weight.detach().numpy(),
                                  _pipelines.torch_mlp(False)[0].weight.detach().numpy())
