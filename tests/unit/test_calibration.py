"""Choosing the batch size from throughput measured at start-up."""

import pytest

from kerasserve.service.inference.runtime import KerasRuntime, best_batch, calibrate


def test_stops_where_throughput_stops_growing():
    # Measured here for MobileNetV2 on TensorFlow: the curve peaks at 4, then falls; 2 is
    # within 10% of the peak and answers sooner.
    assert best_batch({1: 40, 2: 58, 4: 61, 8: 47, 16: 41, 32: 33}) == 2
    assert best_batch({1: 20, 2: 40, 4: 61, 8: 47, 16: 41, 32: 33}) == 4


def test_prefers_the_smaller_batch_within_ten_percent_of_the_best():
    assert best_batch({1: 50, 2: 95, 4: 100, 8: 101}) == 2


def test_flat_curve_picks_one():
    assert best_batch({1: 100, 2: 100, 4: 100}) == 1


def test_a_runtime_running_batches_side_by_side_takes_the_largest_size_the_noise_allows():
    rates = {1: 180, 2: 200, 4: 195, 8: 150, 16: 120}
    assert best_batch(rates, largest=True) == 4
    assert best_batch(rates) == 1


@pytest.mark.parametrize("within", [0.5, 0.99])
def test_the_best_itself_always_qualifies(within):
    assert best_batch({1: 10, 2: 20, 4: 40}, within) in (2, 4)


@pytest.mark.parametrize(("intra", "inter"), [(-1, 0), (0, -2)])
def test_negative_thread_counts_are_refused_before_tensorflow_is_touched(intra, inter):
    with pytest.raises(ValueError, match=f"intra_op={intra}, inter_op={inter}"):
        KerasRuntime.configure_threads(intra, inter)


class _Counting:
    """Just what `calibrate` touches of a runtime: it counts the batches it is given."""

    def __init__(self, parallelism: int) -> None:
        self.parallelism = parallelism
        self.buckets = [1, 2, 4, 8]
        self.calls: list[int] = []

    def predict(self, batch):
        self.calls.append(len(batch))


@pytest.mark.parametrize(("parallelism", "passes"), [(1, 3), (2, 9)])
def test_a_runtime_running_batches_side_by_side_is_timed_over_more_passes(parallelism, passes):
    # OpenVINO's passes cost milliseconds, and with 3 its start-up batch cap changed between
    # fresh starts; Keras compiles on each size's first pass, so it keeps 3.
    runtime = _Counting(parallelism)
    rates = calibrate(runtime, (8, 8), sizes=[1, 4])
    assert sorted(rates) == [1, 4]
    assert len(runtime.calls) == passes * 2 * parallelism
    assert runtime.calls.count(4) == passes * parallelism
    runtime.calls.clear()
    calibrate(runtime, (8, 8), runs=1)
    assert len(runtime.calls) == 4 * parallelism


class _Candidate(_Counting):
    """A runtime `--runtime auto` can compare: a name, a precision, a warm-up."""

    def __init__(self, name: str, parallelism: int, measured=None) -> None:
        super().__init__(parallelism)
        self.name = name
        self.measured = measured
        self.detail = ""
        self.warmed = False

    def info(self):
        return type("Info", (), {"precision": "fp32"})()

    def warm(self):
        self.warmed = True


def test_runtime_auto_reuses_figures_precision_auto_just_measured():
    from kerasserve.service.inference.runtime_factory import _fastest

    keras = _Candidate("keras", 1)
    openvino = _Candidate("openvino", 2, measured={1: 300.0, 2: 400.0, 4: 380.0, 8: 350.0})
    chosen = _fastest([keras, openvino], (8, 8))
    assert openvino.calls == []  # timed once, by `--precision auto`, not again here
    assert len(keras.calls) == 3 * 4  # 3 passes over sizes 1, 2, 4, 8
    # The fake Keras "runs" in no time, so it measures faster and is chosen and warmed.
    assert chosen is keras
    assert keras.warmed
    assert sorted(keras.measured) == [1, 2, 4, 8]
    assert openvino.measured == {1: 300.0, 2: 400.0, 4: 380.0, 8: 350.0}


class _Burning(_Counting):
    """Burns CPU for each batch: a fixed cost per image, and sleeps (no CPU) a fixed time per
    batch, as a batch of 1 can slip past a busy neighbour's time slice and a large one cannot."""

    def __init__(self, parallelism: int, cpu_per_image_s: float, sleep_s: dict[int, float]):
        super().__init__(parallelism)
        self.cpu_per_image_s = cpu_per_image_s
        self.sleep_s = sleep_s

    def predict(self, batch):
        import time

        end = time.thread_time() + self.cpu_per_image_s * len(batch)
        while time.thread_time() < end:
            pass
        time.sleep(self.sleep_s.get(len(batch), 0.0))


def test_calibration_also_measures_images_per_cpu_second():
    from kerasserve.service.inference.runtime import BATCH_CPU_S

    # Wall time flatters batch 1 (no wait) against 4 (a 30 ms wait, as on a busy machine);
    # CPU time does not see the wait: every image costs 2 ms, every batch BATCH_CPU_S.
    runtime = _Burning(2, 0.002, {4: 0.030})
    cpu: dict[int, float] = {}
    wall = calibrate(runtime, (8, 8), runs=3, sizes=[1, 4], cpu=cpu)
    assert wall[1] > wall[4]
    assert sorted(cpu) == [1, 4]
    for size in (1, 4):
        expected = 2 * size / (2 * size * 0.002 + 2 * BATCH_CPU_S)
        assert cpu[size] == pytest.approx(expected, rel=0.25), (size, cpu)
    assert cpu[4] > cpu[1]
    assert best_batch(cpu, 0.95) == 4
    assert best_batch(wall, 0.95) == 1


def test_runtime_auto_passes_on_the_cpu_figures_it_measured_or_was_given():
    from kerasserve.service.inference.runtime_factory import _fastest

    given = {1: 200.0, 2: 230.0, 4: 240.0, 8: 220.0}
    openvino = _Candidate("openvino", 2, measured={1: 300.0, 2: 400.0, 4: 380.0, 8: 350.0})
    openvino.measured_cpu = given
    keras = _Candidate("keras", 1)
    keras.measured_cpu = None
    chosen = _fastest([openvino, keras], (8, 8))
    assert chosen is keras  # the fake Keras runs in no time
    assert sorted(keras.measured_cpu) == [1, 2, 4, 8]  # measured with its wall figures
    keras.measured = None
    alone = _Candidate("other", 1)
    alone.measured_cpu = None
    assert _fastest([openvino, alone], (8, 8)) is alone
    openvino.calls.clear()
    slow = _Candidate("slow", 1, measured={1: 1.0, 2: 1.0, 4: 1.0, 8: 1.0})
    slow.measured_cpu = None
    assert _fastest([openvino, slow], (8, 8)) is openvino
    assert openvino.measured_cpu is given
