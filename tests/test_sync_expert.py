"""The lip-sync expert loss (a2v.losses.sync_expert) in the recipes other than OneShotA2V (whose own
tests cover its sync discriminator): a SyncNet pretrained on real s1 clips by its own trainer, frozen,
as a loss term `sync` that MAN, CRAN and the speech-driven GAN weight in config like any other (MAN,
a per-frame generator, on windows of `training.sequence_length` consecutive frames)."""

from __future__ import annotations

import pytest
import torch

from a2v.losses.sync_expert import SYNC_EXPERT, load_sync_expert, sync_expert_loss
from a2v.recipes import make_recipe
from a2v.training.sync_discriminator import train_sync_discriminator
from conftest import TRAIN_CLIPS

EXPERT = {"model": {"mouth_width": 48, "mouth_height": 24, "channels": [16, 32, 64, 64], "embed_dim": 64},
          "training": {"batch_size": 32, "steps": 60, "log_every": 20, "checkpoint_every": 1000}}

RECIPES = {
    "man": ({"image_size": 32, "base_channels": 8, "max_channels": 32, "video_hidden": 8, "audio_hidden": 8,
             "audio_channels": 16, "n_res_blocks": 4, "predictor": {"base_channels": 8, "depth": 3},
             "discriminator": {"base_channels": 8}},
            {"steps": 25, "discriminators": []}, {"l1_lower": 1.0}),
    "cran": ({"image_size": 32, "audio_channels": 8, "image_channels": 8, "hidden": 64, "code_dim": 32,
              "discriminator": {"base_channels": 8}}, {"steps": 25, "recurrent": True, "discriminators": []}, {"rec": 1.0}),
    "sdgan": ({"image_size": 64, "net_size": 32, "skips": 3, "audio_channels": 8, "audio_fc": 64, "audio_code": 32,
               "audio_rnn": 32, "id_channels": 8, "max_channels": 64,
               "frame_discriminator": {"base_channels": 8, "max_channels": 32, "hidden": 32},
               "sequence_discriminator": {"frame_channels": 8, "max_channels": 32, "frame_code": 32, "audio_channels": 8,
                                          "audio_fc": 32, "audio_code": 16, "rnn_hidden": 24, "hidden": 32}},
              {"steps": 25, "discriminators": []}, {"l1_lower": 1.0}),
}


@pytest.fixture(scope="module")
def expert(s1_shard8, tmp_path_factory):
    torch.set_num_threads(1)
    return train_sync_discriminator(EXPERT, [(s1_shard8, c) for c in TRAIN_CLIPS], tmp_path_factory.mktemp("expert"),
                                    log=lambda m: None)


def test_sync_expert_is_pretrained_only_when_a_phase_weights_it():
    for name, (model, phase, other) in RECIPES.items():
        without = make_recipe(name, model, {"sequence_length": 8}, [{**phase, "losses": other}])
        assert without.needed_pretrained() == ()
        with_sync = make_recipe(name, model, {"sequence_length": 8}, [{**phase, "losses": {**other, "sync": 0.5}}])
        assert with_sync.needed_pretrained() == (SYNC_EXPERT,)
        with pytest.raises(ValueError, match="sync expert needs training.sequence_length >= 5"):
            short = {"sequence_length": 4, **({"frame_samples": 1} if name == "sdgan" else {})}
            make_recipe(name, model, short, [{**phase, "losses": {"sync": 1.0}}])
    with pytest.raises(ValueError, match="at least 5 frames"):
        sync_expert_loss(torch.nn.Identity(), torch.zeros(1, 4, 3, 8, 8), torch.zeros(1, 4, 20, 13))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipes_train_on_the_sync_expert(name, expert, s1_shard8, tmp_path, one_thread):
    """A phase weighting only `sync` (the recipe's reconstruction term at 0) through the phase
    runner on one real clip: the checkpoint names the expert, `g_sync` is logged, and the expert's
    distance on the generated windows falls (the gradient reaches the generator through the frozen
    expert; its own weights do not move)."""
    from a2v.training.checkpoint import load_checkpoint
    from a2v.training.loop import train_phase

    model, phase, other = RECIPES[name]
    phases = [{**phase, "name": "sync_only", "losses": {**{k: 0.0 for k in other}, "sync": 1.0}}]
    training = {"batch_size": 2, "sequence_length": 8, "lr": 2e-3, "log_every": 1, "checkpoint_every": 1000}
    if name == "sdgan":
        training["frame_samples"] = 2
    config = {"model_type": name, "model": model, "training": training, "phases": phases}
    net, _ = load_sync_expert(expert, "cpu")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(0)
    out = train_phase(config, [str(s1_shard8)], [(s1_shard8, TRAIN_CLIPS[0])], 0, tmp_path, None, log=lambda m: None,
                      pretrained={SYNC_EXPERT: expert})
    ckpt = load_checkpoint(out)
    assert ckpt["info"][SYNC_EXPERT] == str(expert)
    rows = (tmp_path / "losses.csv").read_text().splitlines()
    col = rows[0].split(",").index("g_sync")
    d = [float(r.split(",")[col]) for r in rows[1:]]
    first, last = sum(d[:5]) / 5, sum(d[-5:]) / 5
    print(f"{name}: sync expert term ½d² over the first 5 steps {first:.3f}, last 5 {last:.3f}")
    assert last < 0.8 * first
    assert all(torch.equal(before[k], v) for k, v in load_sync_expert(expert, "cpu")[0].state_dict().items())
