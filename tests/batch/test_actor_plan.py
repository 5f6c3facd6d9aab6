"""The Ray actor pool plan (a pure function of the cluster's resources): GPU clusters get fractional-GPU actors that
share each GPU, CPU-only clusters one actor per CPU left after the readers."""
from __future__ import annotations

import pytest

from llm_backend.batch.ray_engine import ACTORS_PER_GPU, READER_CPUS, ActorPlan, actor_plan


def test_cpu_only_cluster_gets_one_actor_per_cpu_and_no_gpu():
    plan = actor_plan({"CPU": 2.0, "memory": 1e9})
    assert plan == ActorPlan(2, (2 - READER_CPUS) / 2, 0.0) and not plan.use_gpu
    assert actor_plan({"CPU": 8.0}, workers=3) == ActorPlan(3, pytest.approx((8 - READER_CPUS) / 3, abs=1e-4), 0.0)
    assert actor_plan({"CPU": 16.0, "GPU": 0.0}).num_gpus == 0.0  # a GPU key with no GPUs is a CPU cluster


def test_gpu_cluster_shares_each_gpu_between_several_actors():
    plan = actor_plan({"CPU": 16.0, "GPU": 1.0})
    assert plan.use_gpu and plan.actors == ACTORS_PER_GPU
    assert plan.num_gpus == pytest.approx(1 / ACTORS_PER_GPU) and 0 < plan.num_gpus < 1
    assert plan.num_cpus == 1.0  # plenty of CPUs: one each
    two = actor_plan({"CPU": 32.0, "GPU": 2.0})
    assert two.actors == 2 * ACTORS_PER_GPU and two.actors * two.num_gpus == pytest.approx(2.0)


def test_gpu_plan_respects_workers_and_scarce_cpus():
    assert actor_plan({"CPU": 8.0, "GPU": 4.0}, workers=2).num_gpus == 1.0  # never more than one GPU per actor
    three = actor_plan({"CPU": 16.0, "GPU": 1.0}, workers=3)
    assert three.num_gpus == 0.3333 and three.actors * three.num_gpus <= 1.0  # rounded down to Ray's 4 decimals
    tight = actor_plan({"CPU": 2.0, "GPU": 1.0})  # 4 actors on 2 CPUs: they split what the readers leave
    assert tight.actors * tight.num_cpus <= 2.0 - READER_CPUS + 1e-9
    assert "GPU each" in tight.describe()
