"""THE MAIN JOB: a MoCoGAN on bouncing shapes, 8 frames of 32x32, on a 2-core CPU.

Run (then 32-frame clips from the 8-frame model):
    .venv/bin/gan-jax train --config experiments/configs/bouncing_shapes.py \
        --workdir runs/bouncing_shapes
    .venv/bin/gan-jax sample --workdir runs/bouncing_shapes --num-frames 32 --num 8 \
        --out /tmp/bouncing_shapes_32

Model (gan_jax/models/mocogan.py): G = a GRU over per-frame noise (16 -> 16) next to a 64-d content
code per clip. From the content code alone a 2-D DCGAN frame generator (depth 3, base width 16,
batch norm) draws two sprites per clip, mask logits on 16x16 maps (`g.layers = 2`, `g.sprite_scale =
2`), their masks 0 or 1 forward with sigmoid(12 x logit)'s gradient backward (`g.hard_masks = True`,
`g.mask_gain = 12`); each sprite and the background is one colour per clip, each channel -1, 0 or 1
(`g.colour_levels = 3`): the level of the highest of three logits, a Dense of the content code,
forward, their softmax's mean backward (`g.level_logits = True`), and a presence head can hide a
sprite for the whole clip. The two sprites' colours are picked jointly: a colour's logit is the sum
of its channels' level logits plus a learned logit per colour shared by every clip
(`g.colour_prior`, 27 values), and where the first sprite took the colour the second would pick, the
second takes its next best (`g.distinct_colours`; the background's colour, which hides a sprite, may
be taken twice): the data never shows two objects of one colour in a clip. Each sprite starts
anywhere in the frame that holds its map and glides at one velocity per clip, a learned speed
(softplus) times a unit direction, both read from the GRU's code of frame 1 (`g.layer_motion =
"glide"`); its path folds back into the frame as a ball bounces off walls, turning where its
object's edge, not its map's, meets the frame's (`g.layer_walls = "reflect"`); the frames are the
sprites moved (bilinearly, on the logits) and painted over the background. The colour and presence
heads train at 5 times G's learning rate, as does the colour prior. D = an image head (2-D, frames 0
and 4 of each clip) and a video head (video_dcgan's 3-D D, with ProGAN's minibatch-std channel over
groups of 4 clips on its last map: `d.minibatch_std = 4`), both of depth 3 and base width 16 with
batch norm, their non-saturating losses weighted 1 and 1, and R1 (gamma 1) on both heads' real clips
every 32nd D update, weighted 32 times (lazy regularisation, `penalty.every = 32`). 1250 steps of
batch 16, Adam 1e-3 with StyleGAN2's betas (0, 0.99) for both nets, EMA decay 0.99; samples and
evaluations use the EMA G's standing batch-norm statistics (`ema.standing_stats = 100`: its own
statistics over 100 batches, BigGAN's; gan_jax/standing_stats.py).

Time: 1250 steps of batch 16, plus the shapes feature network (trained once, about 20-40 s), 2
evaluations of 512 clips (video_stats, shapes_fd, shapes_physics; at step 0 and at the end) and
compilation. This recipe, from a fresh clone on 2 idle cores of an Intel Xeon with AVX-512 and AMX:
4 min 44 s for the README's whole command (venv, pip install, training), of which 3 min 51 s
`gan-jax train` (peak host memory 2.0 GB), seed 0's figures below reproduced to the digit. The
recipe before the colour picks, the same way on another host of that kind: 3 min 38 s, of which 2
min 56 s `gan-jax train` (peak host memory 2.0 GB). The gliding sprites with rounded colours (before
that), on another host of that kind: 4 min 23 s, of which about 3 min 40 s `gan-jax train` (the
feature network 35 s; peak host memory 2.1 GB). The steered sprites before them, from a fresh clone
on a slower host of that kind (session 39): 4 min 52 s for the README's whole command (venv, pip
install, training), of which about 3 min 55 s `gan-jax train` (the feature network 37 s; peak host
memory 2.0 GB), its seed-0 figures reproduced to the digit; on that host the recipe before the
sprites took 3 min 02 s with the feature network cached and the sprites 3 min 07 s. On 2 cores of an
AMD EPYC with AVX-512 (no AMX) this recipe's `gan-jax train` took 3 min 01 s and 3 min 22 s (seeds 1
and 2; session 47) and ended at FSD 2.65 / 4.07 / 2.22 for seeds 0 / 1 / 2, 87.7 / 85.5 / 84.0 % of
the clips passing the physics check, off-palette 9.5 / 8.6 / 9.3 %; 1.7-1.8 % of the clips (2048
sampled per seed) were drawn on a coloured background (green, dark red) instead of black. The recipe
before the sprites: 2 min 10 s wall from a fresh clone (the README's command) on 2 idle cores of an
Intel Xeon with AVX-512 and AMX (peak host memory 1.8 GB; the figures below to the last digit); the
recipe before the output gain took 1 min 59 s there on another day (the gain does not change the
step), the recipe before its optimiser changed 2 min 05 s, where the recipe without R1 took 1 min 58
s the same hour (R1 every 16th update: 2 min 16 s). Without R1 that recipe took 1 min 51 s on a
faster host of this kind (float32 matmul peak 398 GFLOP/s; 1 min 34 s with the feature network
cached, of which the standing statistics take about 4 s), 3 min 17 s on a slower one (matmul peak
204), and 4 min 33 s on a 2-core AMD EPYC (AVX2) before the minibatch-std channel and the standing
statistics, which cost next to nothing; R1 adds about 6 %. (1500 steps evaluated every 250 took 5
min 27 s on the EPYC, every 500 5 min 11 s, only at the ends 5 min 14 s; the FSD was 10.4 at step
1250 and 10.6 at 1500, so the last 250 steps were cut.)

Expected (bitwise reproducible per CPU; measured on the Intel Xeon, seeds 0, 1 and 2 with
`--config.seed=S`; 512 EMA clips, eval/* in metrics.jsonl): the Fréchet Shapes Distance falls from
about 350 at step 0 (the untrained generator) to 4.5 / 2.6 / 2.0 at step 1250 (two draws of real
clips: 1.7; the issue's target: at most 5). The physics check passes 91.4 / 91.4 / 88.9 % of the
clips (the target: 50 %; real clips 100 %): right object count in every frame 98 / 99 / 98 %,
colours kept 100 / 100 / 100 %, areas kept 97 / 98 / 97 % (area CV 0.020 / 0.020 / 0.019, real
0.03), motion 98 / 98 / 98 % (RMS distance from the fitted bounce 0.20 / 0.21 / 0.21 px, real 0.17),
crisp 97 / 96 / 96 % (off-palette 11.6 / 7.7 / 4.4 % of the pooled non-background pixels), frozen
objects 0.5 / 0.1 / 0 %, frames without an object 2.3 / 0.8 / 2.0 %, 1.26 / 1.39 / 1.39 objects per
clip (the data: 1.49). Seeds 0 and 1 ran side by side (4 min 41 s each, feature network cached),
seed 2 alone (3 min 01 s). samples/step_001250.png of seed 0: one or two crisp objects per clip,
each one palette colour and no two alike in a clip (cyan and red, red, cyan, orange and magenta,
white and red, yellow over red, magenta over orange, yellow over magenta), keeping its shape and
colour and gliding in a straight line across the 8 frames; objects pass over one another and the
one drawn on top stays on top. The outlines are rounded blobs, not yet the data's squares and
discs.

The colour picks are the latest change (same Xeon and seeds), at no more cost. Without them (the
recipe before) the FSD ended at 4.0 / 2.1 / 3.3 and the physics check passed 82.4 / 78.7 / 79.3 %:
right count 99 / 98 / 98 %, colours kept 98 / 100 / 98 %, areas kept 92 / 95 / 93 %, motion 95 / 94
/ 95 %, crisp 95 / 88 / 93 % (off-palette 5.5 / 11.8 / 6.6 %), 1.53 / 1.38 / 1.40 objects per clip.
Its samples/step_001250.png of seed 0: one or two crisp objects per clip, each one palette colour
(white and yellow, red, red and white, yellow, magenta and cyan, white and magenta, magenta and
green, yellow and cyan). What failed there (seed 0, another 512 clips, 81.2 % passing) was areas
alone 5.9 % of the clips (an object smaller than the data's 8 px, or whose outline changes by a
pixel as it moves), crisp alone 4.9 % (an object of a colour off the palette, a channel at the
middle level), motion alone 3.3 %, colours alone 2.0 % (a speck of a third colour), count alone 1.0
%. The long config (experiments/configs/bouncing_shapes_long.py) has the variants of the picks that
were tried.

The colour logits and R1 at gamma 1 were the change before (same Xeon and seeds), at no more cost:
two runs side by side took about 4 minutes each, as before. The recipe before (below: each channel
tanh(6 x a Dense) rounded, R1 at 0.1) ended at FSD 3.5 / 2.6 / 3.1 with 63.3 / 61.7 / 62.7 %
passing and off-palette 18 / 19 / 18 %: its rounding puts the middle level between the outer two, so
every content code that moves a channel from -1 to 1 passes a band of codes drawn at 0 (dark red,
teal, half-blue objects); with a logit per level that band can close, and orange (255, 128, 0), the
one palette colour that needs the middle level, was drawn far more often (82 objects of 512 clips on
seed 1 against 12 on seed 0 before). The logits alone (R1 at 0.1): FSD 3.0 / 6.3 / 27.5 and 76.6 /
77.7 / 27.7 % passing; on seed 2 D pulled away from G at about step 1100 (its loss from 1.8 to 0.1)
and G's sprites grew into large overlapping squares. With R1 at gamma 1 (this recipe) seed 2 held
(79.3 %, FSD 3.3), and so did D's learning rate halved (70.5 %, FSD 2.0; seed 2 only); the logits'
head at G's learning rate instead of 5 times did not (15.2 %, FSD 41; seed 2). Not kept: each
sprite's colour picked from a learned table of 8 colours by the highest of 8 logits (a patch;
straight-through as the levels, the table's entries rounded to 3 levels or not), FSD 111 / 31.6 and
0 / 13.3 % passing with rounding, 17.1 / 23.6 and 4.3 / 0.4 % without (seeds 0 / 1): the entries
settled on dim colours between the levels, each entry's gradient averaged over every clip that
picked it.

Gliding, the walls and the colour levels were the change before (same Xeon and seeds), at no more
cost: two runs side by side took 3 min 17 s to 3 min 43 s each, the steered and inertial sprites
bouncing off the walls 3 min 51 s to 4 min 13 s. The steered sprites (the recipe before, below)
ended at FSD 3.4 / 3.1 / 2.9 with 30.5 / 30.5 / 37.5 % passing and motion 53-59 %, their objects too
slow or running into a wall. One change at a time: the steered sprites bouncing off the walls
(`g.layer_walls = "reflect"`), FSD 2.7 / 3.2 / 3.2 and 45.9 / 41.4 / 49.8 % passing, motion 71-81 %
(with the trained steering zeroed, seed 0, about 7 % of the objects strayed more than 0.75 px from
the fitted bounce instead of about a quarter, but 14 % were slower than the data: the steering had
learnt to mend the speeds, and bent the paths doing it); the inertial steps bouncing, FSD 2.9 and
40.0 % (seed 0); gliding at one velocity of learned speed and direction, bouncing, FSD 2.8 / 2.8 and
59.4 / 55.5 % (seeds 0 / 1), motion 91 / 88 %; then each colour channel rounded to -1, 0 or 1 (that
recipe), crisp 75-79 % instead of 70-72 % and 62-63 % passing. Not kept: rounded to -1 or 1
(`g.colour_levels = 2`, seed 0), every object on the palette (crisp 100 %, 76.2 % passing) but none
can be orange (255, 128, 0), and the FSD rose to 5.3; a 0/1 gate per sprite and clip in place of the
presence added to its logits (a patch; seed 0), off-palette 12 % and crisp 83 %, but colours kept in
83 % of clips and 48.6 % passing; D's image head with a per-pixel first layer of 16 channels
(`d.pixel_stem = 16`), FSD 3.2 / 6.8 / 1.9 and 66.8 / 51.8 / 61.1 % passing, crisp 74-80 %: no
better over the seeds, and dearer. Most off-palette objects have a channel at the middle level,
which orange needs and D does not learn to refuse elsewhere.

The sprites were the change before (same Xeon and seeds), at about the same cost: 3 min 07 s alone
against the recipe before's 3 min 02 s on a slower host of this Xeon kind than the one of the times
above (feature network cached; the frame generator runs on one set of sprites per clip instead of
every frame, and D's step dominates). Tried on the way (seed 0, or seeds 0 / 1; all with the colour
and presence heads at 5 times, two layers, masks at gain 12): frame-sized layers moved by a Dense of
each frame's motion code (`g.layer_motion = "translate"`), FSD 5.6 and 0.4 % passing with soft
masks, 6.6 and 5.1 % with hard ones (crisp 10 -> 70 %); a constant velocity changed by a
zero-initialised Dense of the motion code (`"inertial"`), FSD 9.1 / 8.5, 14.5 / 10.4 % passing: a
frame-sized layer drew two objects of one colour, or a dark layer slid over another to fake a change
of shape; that on 16x16 sprites, FSD 4.1 / 5.3 with 32.2 / 38.5 % passing (motion 59 / 65 %, right
count 86 / 88 %); the steering MLP reading the frame's motion code as well, FSD 3.2 / 3.4 with 21.7
/ 19.5 % passing (motion 39 / 36 %: the per-frame noise made the paths wobble); the sprites' motion
at 5 times G's learning rate, FSD 3.0 and 30.3 % passing; a switch per sprite and clip of 0 or 1
instead of the presence added to its logits (a patch, not kept), FSD 3.3 and 28.3 %, crisp 80 %;
every layer's colour picked from a learned palette of 16 (a patch, not kept), FSD 38.5 / 73.1 at G's
learning rate and 17.4 / 14.2 at 5 times, with 33.4 / 38.3 % passing and 80 / 97 % crisp, but
magenta or green backgrounds and striped objects.

The recipe before the sprites (G's frame generator drew every frame from its content and motion
codes; same Xeon and seeds, `--config.seed=S`): the Fréchet Shapes Distance (eval/shapes_fd/fsd in
metrics.jsonl) goes from 85 / 97 / 104 at step 0 (the untrained generator) to 6.2 / 7.1 / 6.9 at
step 1250; two
draws of real clips score 1.7. The physics check (eval/shapes_physics) passes no clip yet:
off-palette pixels 28 / 30 / 31 % of the non-background (real clips: 0), right object count
in every frame 33 / 35 / 37 % of clips, colours kept 32 / 38 / 38 %, areas kept 22 / 21 / 27
% (area CV 0.31 / 0.28 / 0.29, real 0.03), motion 18 / 23 / 24 %, frozen objects 5 / 8 / 10
%, frames without an object 2 / 3 / 3 %, 2.2 to 2.5 objects per clip (the data: 1.5).
samples/step_001250.png of seed 0: one or two solid, saturated blobs per clip on black, most
of one main colour (cyan, blue, green, yellow) with a fringe or patch of a second (red under
yellow, magenta beside white); edges are sharper than the recipe before's but the outlines
are ragged, not squares and discs; one blue blob shrinks and fades as it moves.
With both nets in bf16 (`--config.g.dtype=bfloat16 --config.d.dtype=bfloat16`, AMX products)
the same seeds end at FSD 8.8 / 7.1 / 7.9, off-palette 29 / 34 / 31 %, frozen objects 10 / 7 /
11 % (gain 1: 10.1 / 9.7 / 8.0, 42 / 39 / 40 %, 13 / 9 / 6 %).
G's output gain is the latest change (same Xeon and seeds, all else equal). It multiplies the frame
generator's last convolution before the tanh; with Adam that is the same as a last layer initialised
6 times larger and trained at 6 times the learning rate, so the output leaves the soft middle of the
tanh sooner, and an edge between black and a colour spans fewer grey pixels. The recipe before (gain
1) ended at FSD 9.8 / 7.1 / 8.4 with off-palette 40 / 38 / 39 %, count kept 20 / 28 / 29 %, colours
kept 20 / 25 / 25 %, areas kept 22 / 21 / 29 %, motion 29 / 22 / 33 %, frozen objects 10 / 10 / 7 %,
and its grid showed saturated blobs with a white core and a fringe of another colour, some changing
colour as they move. Gain 3: FSD 6.9 / 9.7 / 7.4, off-palette 36 / 38 / 34 %, count kept 26 / 25 /
33 %; gain 9: FSD 6.9 / 4.3 / 9.7, off-palette 28 / 35 / 30 %, count kept 34 / 52 / 32 %, a mean FSD
of 7.0 against gain 6's 6.7, over a wider spread; gain 12: FSD 7.8 / 7.8 / 6.6, off-palette 32 / 27
/ 30 %, count kept 38 / 39 / 43 %, colours kept 32 / 38 / 39 %, with striped and speckled objects in
the grid. The gain costs nothing: the step is the same. Tried with gain 6 and not kept: a per-pixel
first layer of 16 channels in D's image head (`d.pixel_stem = 16`), FSD 8.2 / 7.3 / 9.1, off-palette
23 / 32 / 24 %, count kept 26 / 40 / 30 %, colours kept 33 / 42 / 39 %: fewer pixels off the palette
on two seeds, a higher FSD on all three; D's base width 32, FSD 7.3 and off-palette 34 % on seed 0
(stopped there) at a dearer step; the trained G instead of its EMA (`ema.decay = 0`, the same
training), FSD 9.4 and off-palette 32 % on seed 0: the EMA is not what softens the edges; G's last
upsampling as nearest x2 and a 3x3 conv instead of a transposed conv (`g.resize_layers = 1`, against
the checkerboard inside objects), FSD 6.9 / 5.9 / 8.6, off-palette 39 / 27 / 34 %, and all three
(`g.resize_layers = 3`), FSD 6.9 and off-palette 33 % on seed 0 (stopped there), its blobs smooth
and free of the dotted pattern but softer and more often of two colours; in the long config three
resize layers ended step 2000 at FSD 5.0 and off-palette 33 % (transposed: 3.7 and 25 %; seed 0,
stopped there). Those runs upsampled and then convolved the 4x larger map (44 ms a step, 76 ms with
one resize layer, 102 ms with three; benchmarks/train_step.py); resize layers now run as transposed
convolutions with folded kernels, the same numbers in another rounding, at 44 ms with one or three.
Tried with gain 6 and not (yet) kept: a layered G (gan_jax/models/mocogan.py: the frame generator
draws two mask logits instead of the frame, and each frame is two layers painted over a background,
every layer one colour per clip and shown or hidden per clip by a presence head). Same Xeon, seeds 0
/ 1 / 2, with `--config.g.layers=2 --config.g.mask_gain=12 --config.g.lr_multipliers.layer_colours=5
--config.g.lr_multipliers.layer_presence=5` (the colour and presence heads at 5 times G's learning
rate): FSD 5.6 / 7.8 / 8.7 (this recipe: 6.2 / 7.1 / 6.9), off-palette 33 / 31 / 30 % (28 / 30 / 31
%), right count 78 / 78 / 75 % (33 / 35 / 37 %), colours kept 94 / 93 / 96 % (32 / 38 / 38 %), areas
kept 41 / 32 / 48 % (22 / 21 / 27 %), motion 30 / 27 / 28 % (18 / 23 / 24 %), crisp clips 2.1 / 4.9
/ 5.1 % (0 %), frozen 7 / 8 / 12 % (5 / 8 / 10 %), passing clips 0 / 0 / 0.4 % (two of seed 2's 512,
the first the main job has made), at 5 % more wall time (3 min 11 s against 3 min 02 s alone on a
slower host of this Xeon kind). Seed 0's grid shows what the count and colour components say: one or
two objects per clip (white, yellow, orange, green, red, magenta), each one palette colour from the
first frame to the last, none of this recipe's two-coloured blobs; one clip draws a dim green object
under a red one. What it loses is brightness: some clips hide an object by drawing it dark (dark
blue, olive, dark red on black) rather than switching its layer off, and the physics check finds no
object in 17-22 % of their frames (this recipe: 2-3 %; objects per clip 0.78-0.95 against the data's
1.49); the off-palette pixels are those dim objects and a one-pixel border of the rest. Not kept
yet: its mean FSD is 7.4 against 6.7, and its long run and bf16 run are not measured.
Variants (seed 0 unless said): the masks at the output gain (6), FSD 7.0 / 9.6 / 7.3 (seeds 0 / 1 /
2), off-palette 34 / 33 / 39 %, right count 75 / 76 / 71 %, crisp 3.1 / 4.9 / 5.9 %; the colour head
at 20 times, FSD 10.9, crisp 13.5 %, off-palette 30 %; without the presence head (the variants that
follow too), FSD 10.4 / 7.4 (seeds 0 / 1), frames without an object 26 / 19 %; the colour head at
G's own learning rate, FSD 9.7 / 10.6 (seeds 0 / 1), off-palette 65 / 65 %, backgrounds tinted dark
red or green in half the clips of the grid; the background drawn per pixel instead (`g.layer_colours
= "flat_objects"`), FSD 8.5 / 11.4 (seeds 0 / 1), right count 75 / 66 %, colours kept 97 / 88 %, no
crisp clip, a speckle of dots over the black; that with resize layers, FSD 9.2 (one) and 8.4
(three), the background map then drawing multicoloured objects of its own; the masks' gain at 20,
FSD 11.8, crisp 12.5 %, off-palette 31 %, sharper outlines but more dim objects.
In the long config (bouncing_shapes_long.py's docstring; seed 0) the same layered G ended at FSD 6.0
against 3.4, with 92 % right count (83 %), 98 % colours kept (84 %), 5.9 % crisp clips (0 %) and 2.5
% passing (0 %).
What follows was measured with gain 1.
Adam's betas and learning rate were the change before. The recipe before them, Adam 5e-4 with
betas (0.5, 0.999), ended at FSD 15.2 / 15.0 / 10.0 with off-palette 68 / 72 / 67 %, count
kept 15 / 20 / 17 %, colours kept 7 / 10 / 6 %, areas kept 27 / 41 / 20 %, motion 28 / 45 / 23
%, frozen objects 33 / 20 / 22 % and frames without an object 14 / 20 / 11 % (in bf16: FSD 9.9
/ 14.6 / 13.2, off-palette 67 / 72 / 70 %); its grid showed saturated blobs with soft edges,
one clip nearly empty throughout and one a speckle of several colours. Betas (0, 0.99) at
5e-4: FSD 9.6 / 9.7 / 8.5, off-palette 49 / 49 / 52 %, frozen 17 / 16 / 22 % (bf16: 12.6 /
10.0 / 10.1, 47 / 51 / 49 %); with the frame generator's hidden layers at least 32 wide as
well (`g.min_width = 32`), 9.9 / 10.3 / 8.0 and 44 / 48 / 45 %, within that spread; at 2e-3,
FSD 10.5 / 8.8 / 9.4 with off-palette 38 / 33 / 32 % and colours kept 23 / 28 / 33 %: fewer
pixels off the palette than at 1e-3 but a higher FSD on two seeds of three. With the new
optimiser, both learning rates decayed linearly to a tenth from mid-run (as in
bouncing_shapes_long.py): FSD 10.3 / 8.8 / 9.0, off-palette 43 / 40 / 41 %, not better. The
betas cost nothing: the step is the same. What follows was measured with the recipe before,
Adam 5e-4 with betas (0.5, 0.999).
R1 was the change before. Without it (the recipe below, same Xeon and seeds) float32 ended at
FSD 13.4 / 9.6 / 12.2 with 75 / 75 / 77 % of pixels off the palette, but bf16 at 34.1 / 26.7 /
16.2 with the AMX products and 13.3 / 9.5 / 44.9 without them (GAN_JAX_BF16_PRODUCTS=0): one
run in three fell apart into dim, faint blobs. With lazy R1 all six float32 and bf16 runs end
within FSD 9.9-15.2 and 67-72 % off the palette; float32's mean FSD is 13.4 against 11.7
without R1, within the spread of three seeds. R1 every 16th update gave the same (float32
15.0 / 15.2 / 10.8, bf16 10.8 / 12.3 / 12.1, off-palette 61-72 %) at 2 min 16 s; every 4th,
float32 35.8 / 10.1 / 20.0 and bf16 10.0 / 14.3 / 11.4.
The recipe before R1 (all that follows was measured without it):
With the trained G's running statistics instead (`--config.ema.standing_stats=0`; the same
training, bitwise) the same three generators score FSD 15.3 / 12.5 / 13.5, off-palette 80 /
81 / 79 %, areas kept 26 / 33 / 29 %, motion 33 / 39 / 32 %, frozen 42 / 27 / 33 %: the
standing statistics lower the FSD and the off-palette share of every seed, and move the
areas and motion components both ways. 400 batches instead of 100 give the same (FSD 13.4 /
9.6 / 12.1).
Without the minibatch-std channel (same Xeon and seeds, running statistics) the FSD ended at
30.7 / 13.0 / 39.4, off-palette 88 / 75 / 92 %, frozen 53 / 26 / 50 %: the channel took the
spread over seeds from 13-39 to 12.5-15.3 and lowered the off-palette and frozen shares, with
the count and colour components as low as before. On the AMD EPYC that recipe's seed 0 ended
at FSD 10.4 (off-palette 86 %, frozen 31 %), a seed the Xeon's did not repeat: CPUs round
differently. Compare recipes over seeds on one CPU.
Tried with the standing statistics and not kept (Xeon): EMA 0.995, FSD 14.2 / 12.8 (seeds 0
and 1); the video head's loss weight at 0.5, FSD 14.0 / 27.1 / 10.7 (seeds 0, 1, 2;
off-palette 65 / 83 / 72 %); both learning rates decayed linearly to a tenth from mid-run,
FSD 35.7 (seed 0); the image head on every frame (`d.image_stride = 1`), FSD 38.6 / 14.9
(seeds 0 and 1); D of depth 4 (a 2x2 last map, which halved the class-conditional config's
FSD), FSD 11.7 / 13.8 with off-palette 83 / 85 %.
Better but not kept, for the time: G's base width 32 (`--config.g.base_width=32`, with lazy
R1, same Xeon and seeds) ends at FSD 10.3 / 11.8 / 7.9 with off-palette 53 / 55 / 49 % and
frozen objects 10 / 16 / 12 % (this recipe: 15.2 / 15.0 / 10.0, 68 / 72 / 67 %, 33 / 20 / 22
%), but its step takes 57 ms against 43 (benchmarks/train_step.py) and the run 113 s against
95 s with the feature network cached (+19 %), which would take the AMD EPYC's run (4 min 33
s before R1, about 4 min 50 s with it) past 5 minutes. Stopped at 1000 steps to pay for it,
it scores no better than this recipe (FSD 11.8 / 16.7 / 9.7); checkpoints and samples every
625 steps instead of 250 saved about 5 s, and no evaluation at step 0 (`eval.at_start =
False`) about 3 s.
Choices, from experiments/shapes_ablation.py (README, "Video GANs on bouncing shapes"; this
recipe as its `mocogan` rows, 180 s per run on one core of the Intel Xeon, seeds 0, 1 and 2): only
the content/motion family passes any clip (this recipe 74 ± 6 % at FSD 3.0 ± 0.8, against no clip
and FSD 38 for the 3-D DCGAN with NS + R1 and 132-440 for the residual R3GAN-style nets, which
collapsed); with this family hinge collapsed on one seed of three, and RpGAN + R1 + R2 (63 %) and
augmentation (58 %) passed fewer clips. R1 is taken lazily: on every update it costs a double
backward pass each step; every 32nd update costs 6 % of the run. Batch norm in D learned fastest
(see bouncing_shapes_dcgan.py); EMA 0.99, since a 0.999 average over a run this short is mostly
early, grey generators.
"""

from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="mocogan", data="bouncing_shapes")
    cfg.steps = 1250
    cfg.batch_size = 16

    # Adam with StyleGAN2's betas (0, 0.99) at 1e-3: FSD 7.1-9.8 over three seeds and 38-40 %
    # of pixels off the palette, where betas (0.5, 0.999) at 5e-4 ended at 10.0-15.2 and 67-72 %.
    for net in (cfg.g, cfg.d):
        net.lr = 1e-3
        net.b1 = 0.0
        net.b2 = 0.99
    cfg.loss.head_weights.image = 1.0
    cfg.loss.head_weights.video = 1.0
    # G's frames tanh(6 x its last conv): FSD 6.2-7.1 over three seeds and 28-31 % of pixels off
    # the palette, where the plain tanh ended at 7.1-9.8 and 38-40 % (docstring).
    cfg.g.output_gain = 6.0
    # Sprites: G draws two layers of one colour each, once per clip on 16x16 maps, with masks
    # of 0 or 1 (straight-through), and glides each at one velocity per clip, bouncing off the
    # frame's edges where its object's edge meets them; each colour channel is -1, 0 or 1, the
    # level of the highest of three logits (straight-through). FSD 4.0 / 2.1 / 3.3 and 79-82 %
    # of clips passing the physics check (with R1 at 1, below), where the frames drawn directly
    # ended at 6.2-7.1 passing none (docstring).
    cfg.g.layers = 2
    cfg.g.layer_motion = "glide"
    cfg.g.layer_walls = "reflect"
    cfg.g.colour_levels = 3
    cfg.g.level_logits = True
    cfg.g.sprite_scale = 2
    cfg.g.hard_masks = True
    cfg.g.mask_gain = 12.0
    # The colour and presence heads at 5 times G's learning rate: at 1 the background took a
    # tint (docstring).
    cfg.g.lr_multipliers.layer_colours = 5.0
    cfg.g.lr_multipliers.layer_presence = 5.0
    # A clip's two sprites in different colours (a colour's logit the sum of its channels' level
    # logits; where the first sprite took the second's colour, the second takes its next best),
    # plus a learned logit per colour at 5 times G's learning rate: 88.9-91.4 % of the clips pass
    # where the recipe without passed 78.7-82.4 % (docstring).
    cfg.g.distinct_colours = True
    cfg.g.colour_prior = True
    cfg.g.lr_multipliers.colour_prior = 5.0
    cfg.ema.decay = 0.99
    # Samples and evaluations with the EMA G's own batch-norm statistics over 100 of its
    # batches (BigGAN's standing statistics): FSD 9.6-13.4 over three seeds instead of 12.5-15.3.
    cfg.ema.standing_stats = 100
    # ProGAN's minibatch-std channel in the video head: FSD 12.5-15.3 over three seeds
    # instead of 13-39 (docstring).
    cfg.d.minibatch_std = 4
    # Lazy R1 (every 32nd D update): at gamma 0.1, FSD 9.9-15.2 over three seeds in float32 and
    # bf16 alike, where without it bf16 ended at 16.2-34.1; with the level logits, gamma 1 keeps
    # D from running away from G (at 0.1 seed 2 ended at FSD 27.5; docstring).
    cfg.penalty.r1 = 1.0
    cfg.penalty.every = 32

    cfg.data.num_frames = 8
    cfg.data.height = 32
    cfg.data.width = 32
    cfg.data.num_objects = (1, 2)
    cfg.data.size_range = (8.0, 12.0)
    cfg.data.speed_range = (1.0, 2.5)
    cfg.data.num_threads = 1

    cfg.ckpt.every = 250
    cfg.log.every = 25
    cfg.log.sample_every = 250
    cfg.log.num_samples = 8
    # At step 0 and at the end: video_stats, shapes_fd and shapes_physics of the EMA generator
    # on 512 clips, into metrics.jsonl (about 15 s each). The shapes feature network trains
    # once (about 40 s) into WORKDIR/shapes_features.
    cfg.eval.every = 1250
    cfg.eval.num_samples = 512
    return cfg
