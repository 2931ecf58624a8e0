import pytest

from utils.device import GPU, plan_devices


def test_cpu_only_is_plain_float32():
    plan = plan_devices([])
    assert (plan.policy, plan.distribution, plan.replicas, plan.has_gpu) == ("float32", "default", 1, False)
    assert plan.global_batch(8) == 8
    assert "CPU only" in plan.describe()


def test_old_gpu_stays_float32():
    plan = plan_devices([GPU("Tesla K80", (3, 7))])
    assert plan.policy == "float32" and plan.distribution == "default"
    assert "7.0" in plan.describe()


def test_new_gpu_uses_mixed_precision():
    plan = plan_devices([GPU("Tesla T4", (7, 5))])
    assert plan.mixed_precision and plan.distribution == "default" and plan.replicas == 1


def test_two_gpus_mirror_and_scale_the_batch():
    plan = plan_devices([GPU("A100", (8, 0)), GPU("A100", (8, 0))])
    assert plan.distribution == "mirrored" and plan.replicas == 2
    assert plan.global_batch(8) == 16
    assert "2 replicas" in plan.describe()


def test_mixed_generations_fall_back_to_float32():
    assert plan_devices([GPU("V100", (7, 0)), GPU("P100", (6, 0))]).policy == "float32"


def test_unknown_capability_is_not_trusted():
    assert plan_devices([GPU("mystery")]).policy == "float32"


def test_float32_can_be_forced():
    assert plan_devices([GPU("T4", (7, 5))], allow_mixed=False).policy == "float32"


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_other_backends_use_one_gpu(backend):
    plan = plan_devices([GPU("H100", (9, 0))] * 2, backend)
    assert plan.distribution == "default" and plan.replicas == 1 and len(plan.gpus) == 1
    assert "TensorFlow" in plan.note
