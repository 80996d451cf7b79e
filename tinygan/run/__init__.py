"""Running GANs: a run's settings, its trainer, its folder and checkpoints (the layer above ``tinygan.gan``).

    from tinygan.run import TrainConfig, train, resume
    trainer = train(TrainConfig(steps=500, out="runs/short"))     # a DCGAN on the bundled digits
    resume("runs/short", steps=1000)                               # 500 more, exactly as if never stopped

=================  ===========================================================================
module             its one job
=================  ===========================================================================
``config``         :class:`TrainConfig`: every setting, its flag, help, check and role
``data``           :class:`DataSource`: real batches as a function of (seed, position)
``trainer``        :class:`Trainer`: networks, optimizers, random state; ``train_step``; save/restore
``checkpoint``     the ``.npz`` format: atomic writes, checked lazy reads
``folder``         :class:`RunFolder`: the run folder's files, its lock, the append-only log
``loop``           ``train`` / ``resume``: the loop that ties a trainer to its folder
``toy``            pictures of toy runs (Figure 1, D's field) and snapshot training
=================  ===========================================================================
"""
from tinygan.run.checkpoint import CheckpointError, CheckpointFile, load_checkpoint, save_checkpoint
from tinygan.run.config import DEFAULT_STEPS, ConfigError, TrainConfig
from tinygan.run.folder import RunFolder, RunFolderError
from tinygan.run.loop import NonFiniteError, resume, train
from tinygan.run.trainer import Trainer, load_generator

__all__ = ["TrainConfig", "ConfigError", "DEFAULT_STEPS", "Trainer", "train", "resume", "load_generator",
           "NonFiniteError", "RunFolder", "RunFolderError", "CheckpointFile", "CheckpointError",
           "load_checkpoint", "save_checkpoint"]
