"""Repair a trained model's transposed and subpixel stages after the fact: tie their phase
sums (:mod:`.ties`, the exact math), find the stages in a module and write the corrected
weights back in the checkpoint's own layout (:mod:`.apply`), and measure what changed
(:mod:`.compare`)."""
