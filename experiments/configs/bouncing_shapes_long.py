"""The main job's recipe at four times the batch, each clip's sprites in different colours: MoCoGAN
with G gliding sprites on bouncing shapes, 8 frames of 32x32, 1250 steps of batch 64, about seven
minutes on a 2-core Intel Xeon.

Run:
    .venv/bin/gan-jax train --config experiments/configs/bouncing_shapes_long.py \
        --workdir runs/bouncing_shapes_long

The main job (experiments/configs/bouncing_shapes.py: model, with G drawing two sprites per clip
that glide at one velocity each and bounce off the frame's edges, each colour channel -1, 0 or 1
from one logit per level; data, Adam 1e-3 with betas 0 and 0.99, lazy R1 at gamma 1, G's output gain
6) with batches of 64 clips instead of 16, for the same 1250 steps at the same constant learning
rate, with an EMA of 0.995 (a longer average pays off once the early generators are far behind).
The minibatch-std channel still groups 4 clips. Each sprite's colour is picked jointly, as in the
main job: a colour's logit is the sum of its channels' level logits plus a learned logit per colour
shared by every clip (`g.colour_prior`, 27 values at 5 times G's learning rate), and where the first
sprite took the colour the second would pick, the second takes its next best
(`g.distinct_colours`; the background's colour, which hides a sprite, may be taken twice). The data
never shows two objects of one colour in a clip.

Time: 7 min 18 s wall for seed 0 alone on 2 idle cores of an Intel Xeon with AVX-512 and AMX, the
shapes feature network cached (training it adds about 35 s), 2 evaluations of 512 clips and
compilation included; peak RSS 2.3 GB. The same run took 9 min 21 s in a spell when the shared host
ran a float32 matmul at 158-169 GFLOP/s instead of its usual 200-300. A 2-core AMD EPYC (AVX2) ran
this family's longer configs about half as fast (10 min 01 s against 19 min 58 s for the 10000-step
config below), so about 15 minutes there (estimated, not measured): inside the 30 minutes the issue
allows. Past step 1250 the passing share fell (below), so the rest of the budget is not used. The
grid is experiments/results/shapes_long/step_001250.png.

Expected (bitwise reproducible per CPU; Intel Xeon, seeds 0 / 1 / 2 / 3 / 4 with `--config.seed=S`,
512 EMA clips at step 1250; real clips: FSD 1.7, pass 100 %): the physics check passes 92.2 / 91.8 /
90.2 / 93.8 / 90.0 % of the clips, mean 91.6 % (the issue's target, 90 %, met on every seed; the
config before, batch 32 for 1000 steps: 93.8 / 91.2 / 90.6 / 84.4 / 89.6 %, mean 89.9 %). FSD 2.34 /
1.95 / 2.43 / 3.14 / 2.33, mean 2.44 (the target, at most 3, met on four seeds; before 2.97 / 2.97 /
3.77 / 2.46 / 2.42, mean 2.92). Right object count in every frame 99 / 99 / 98 / 99 / 100 %, colours
kept 100 / 100 / 98 / 100 / 99 %, areas kept 98 / 98 / 98 / 98 / 97 %, motion 96 / 96 / 96 / 96 / 95
%, crisp 99.6 / 98.6 / 99.0 / 99.8 / 97.7 % (off-palette 0.3 / 0.7 / 0.3 / 0.2 / 0.6 % of the
non-background pixels; before 2.2-6.4 %), frozen objects under 0.3 %, frames without an object
0.2-2.0 %, 1.36 / 1.45 / 1.41 / 1.21 / 1.41 objects per clip (the data: 1.49; before 1.28-1.33):
seed 3's FSD, the one above 3, goes with its fewest objects per clip. samples/step_001250.png of
seed 0: one or two crisp objects per clip, each one palette colour and no two alike in a clip (a red
disc passing behind a white one and out below it, green, orange, red, magenta beside white, yellow
in front of orange, blue parting from yellow, red beside cyan), each keeping its colour as it glides
in a straight line; the outlines are rounded blobs and one teardrop, ragged by a pixel in places,
not yet the data's squares and discs.

How these were measured: seeds 0-3 ran 1000 steps of batch 64 (two at a time, 9 min 13 s to 10 min
55 s each, evaluations every 500 steps) and were resumed from their step-1000 checkpoints to step
1500 with evaluations every 250 steps (6 min 12 s to 6 min 25 s each, two at a time); a resumed run
continues as one uninterrupted run would, and evaluations do not touch the training keys. Seed 4 ran
1250 steps alone (8 min 14 s with six evaluations; the shared host's speed varies from run to run).
This file, seed 0 alone (twice), matched seed 0's step 1250 to the bit (FSD 2.3404, 92.19 % passing,
D's loss at step 1225). Pass % by step (FSD in brackets):

| step | seed 0 | seed 1 | seed 2 | seed 3 | seed 4 | mean |
|---|---|---|---|---|---|---|
| 1000 | 95.1 (2.55) | 92.4 (2.20) | 88.9 (3.12) | 88.3 (4.49) | 89.5 (2.56) | 90.8 (2.98) |
| 1250 | 92.2 (2.34) | 91.8 (1.95) | 90.2 (2.43) | 93.8 (3.14) | 90.0 (2.33) | 91.6 (2.44) |
| 1500 | 91.2 (2.08) | 84.6 (1.81) | 88.3 (2.39) | 92.8 (2.02) | | 89.2 (2.08), seeds 0-3 |

The FSD keeps falling to step 1500, but the physics check peaks at 1250: past it sprites begin to
change (colours kept 94.9 / 96.5 % and areas kept 94.1 / 96.5 % on seeds 1 / 2 at step 1500, from
98-100 %). samples/step_001500.png of seed 1 shows how: a red disc trailed by a thin white streak, a
white sprite that appears beside an orange one halfway through a clip. At step 1000 batch 64 already
passes more than batch 32 did at its best (mean 90.8 against 89.9 %), with off-palette pixels at
0.2-1.5 % against 2.2-6.4 %; step 1250 lifts seeds 2-4 over 90 % and seed 3's FSD from 4.5 to 3.1.

Decaying both learning rates linearly to a tenth from step 1000 to step 1500 (`--config.steps=1500`,
`schedule=linear`, `decay_start=0.6666667` and `final_lr_scale=0.1` for `g` and `d`; seeds 1 / 3,
two at a time, 14 min each) did not hold the sprites either: 92.8 / 93.0 % passing at step 1000 (a
schedule compiles to another graph, which rounds differently), 87.7 / 84.2 % at 1250 and 80.5 / 83.4
% at 1500 (FSD 2.5 / 1.9), colours kept 92 % on seed 1 and off-palette pixels 5 % on seed 3 at the
end. Not kept.

The config before this one (batch 32, 1000 steps, the same recipe otherwise; its grid was
experiments/results/shapes_long/step_001000.png, now replaced) measured as follows.

Batch 32, 1000 steps (Intel Xeon, seeds 0 / 1 / 2 / 3 / 4 with `--config.seed=S`, 512 EMA clips;
real clips: FSD 1.7, pass 100 %): the physics check passes 93.8 / 91.2 / 90.6 / 84.4 / 89.6 % of the
clips, mean 89.9 % (the issue's target, 90 %, met on three seeds of five; the recipe before the
colour picks, the same seeds: 86.7 / 83.8 / 88.1 / 80.1 / 81.4 %, mean 84.0 %; the main job before
them: 82.4 / 78.7 / 79.3 %). FSD at step 1000: 2.97 / 2.97 / 3.77 / 2.46 / 2.42 (the target, at most
3, met on four seeds; before: 1.8 / 2.7 / 2.0 / 2.4 / 2.5). Right object count in every frame 98 /
96 / 97 / 97 / 98 %, colours kept 100 % on every seed, areas kept 98 / 98 / 99 / 97 / 99 %, motion
97 / 96 / 95 / 97 / 95 %, crisp 98 / 99 / 98 / 91 / 97 % (off-palette 2.2 / 2.5 / 3.9 / 6.4 / 4.4 %
of the non-background pixels; before 2.3-7.0 %), frozen objects under 0.5 %, 1.28-1.33 objects per
clip (the data: 1.49; before 1.29-1.38). The seeds ran two at a time (3 min 20 s to 4 min 32 s
each). samples/step_001000.png of seed 0: one or two crisp objects per clip, each one palette colour
and no two alike (magenta passing over blue, green, white, yellow, magenta, magenta in front of
white, blue over orange, orange and blue), each keeping its colour and shape as it glides; the
outlines are rounded blobs, not the data's squares and discs.

What failed before the colour picks (seed 2 of that recipe, 512 other clips, 84.0 % passing; a clip
may fail twice): crisp 31 clips, whole sprites in a colour with a channel at the middle level
(spring green, pale yellow, pink, azure, navy, dark green: each halfway between two palette
colours); motion 30, of which 15 an object slower than the data's 1 px per frame, 3 faster than
2.5 and 12 off a straight bounce, several of them two sprites of one colour that the check reads as
one object; areas 18; count 12, 8 of them clips showing no object at all. D does not rank them: over
2048 clips its video and image logits correlate with passing at -0.04 and -0.08, and its top half
passes 86.9 % against 86.5 % for all, so rejecting samples by D's score would not help.

Tried with the distinct colours (same Xeon; pass % at step 1000, FSD in brackets), each a G option
with tests in gan_jax/models/mocogan.py:
- distinct colours alone: seeds 0-4 92.0 / 89.5 / 83.4 / 86.1 / 82.8 % (2.0 / 2.5 / 4.0 / 1.8 /
  2.1), mean 86.8 %. Seed 2 hid its second sprite as a small white speck instead (areas 94 %).
  Without the background's colour shared, seeds 0-2: 93.2 / 91.0 / 82.0 % (2.0 / 2.0 / 3.5).
- the EMA at 0.998 (seeds 3 / 4): 76.0 / 72.7 %, off-palette 13 %: a longer average mixes the colour
  heads' states into colours G does not draw; at 0.99, 85.0 / 82.6 %.
- gliding speeds bounded to a learned interval, low + span x sigmoid (`g.speed_range`), seed 0:
  76.6 % (3.5).
- 8 learned colours instead of the levels (`g.colour_palette = 8`, at 5 times G's learning rate),
  seeds 0 / 1: 35.4 / 43.6 % (11.3 / 24.2), off-palette 44 / 37 %: the table's level logits tie
  and flip from step to step, the EMA's table holds colours between those G draws (magenta in G,
  red with a half blue in the EMA), and red and yellow were never learned.
- one free logit per colour (27, a Dense of the content code) instead of the sum of the channels'
  logits, seeds 0 / 1: 63.3 / 66.4 % (2.6 / 2.9), off-palette 11-12 %, pink and pale yellow drawn
  for 16 % of the second sprites (not kept in the code).
The learned logit per colour ended lowest for the greys and the colours with two channels at the
middle level (about -1.0 to -1.3) and highest for orange (+0.6), black and the primaries.

The recipe before the colour picks follows: the figures below are without them.

Past step 1000 the batch-32 runs lost clips: at step 2000 seeds 0 / 1 passed 79.1 / 80.1 % (FSD 2.7
/ 2.5), areas kept 89 / 93 %: so the config stops at 1000. At half the learning rate (5e-4 for both
nets, batch 32, 2000 steps, seeds 0 / 1: 9 min 42 s each side by side, 4 evaluations) they passed
63.7 / 73.4 % at step 1000, 78.1 / 80.1 % at 1500 and 79.9 / 79.3 % at 2000 (FSD 4.0 / 6.0, 3.4 /
2.7, 5.3 / 2.4): slower, and no higher. At batch 16 (the main job's) for 2000 steps, seeds 0 / 1 / 2
passed 79.3 / 78.1 / 73.2 % at step 1000 and 77.1 / 82.6 / 78.1 % at step 2000, FSD 3.7 / 3.9 / 2.0
and 2.5 / 1.7 / 4.1 (crisp 93-96 %, areas kept 90-96 %, colours kept 93-99 % at step 2000); 4 min 02
s for seed 2 alone, seeds 0 and 1 side by side 6 min 41 s and 6 min 34 s. Its
samples/step_002000.png of seed 0: orange objects in three clips of eight (the data: one object in
eight), green and orange, a red square passing under a white disc, a small magenta speck beside a
white square (the speck under the data's smallest size: areas fail), white over magenta, red over
green.

Longer does not pay at batch 16 either, though it no longer falls apart (same Xeon; seeds 0 / 1
resumed from that run's step 2000 with `--config.steps=4000`, which at a constant learning rate
continues as one 4000-step run would): 79.3 / 78.7 % passing at step 3000 (FSD 2.3 / 2.6), 74.0 /
81.1 % at step 4000 (FSD 3.2 / 2.9), crisp 97-99 % and areas kept 88 / 94 %; D's loss stayed near
2.3, where with R1 at 0.1 D pulled ahead from about step 2000 (below). The 30 minutes the issue
allows this config are not what it lacks.

Each sprite placed at whole pixels (`--config.g.whole_pixels=True`: its offsets rounded forward,
the sub-pixel move's gradient backward, so that an outline cannot change as its object moves; same
Xeon and seeds, 6 min 16 s each for seeds 0 and 1 side by side): 85.5 / 82.4 / 85.7 % passing at
FSD 2.1 / 5.0 / 2.1, areas kept 95 / 95 / 95 %, motion 96 / 93 / 96 %: no better than sub-pixel
moves on any seed, so not kept.

G's frame generator twice as wide (`--config.g.base_width=32`; seeds 0 / 1 side by side, 6 min
each): 84.2 / 85.5 % passing at FSD 2.9 / 2.6, crisp 92 / 92 %: within the seeds' spread, not kept.
D's heads twice as wide (`--config.d.base_width=32`; seeds 0 / 1 side by side, 7 min 15 s each):
83.2 / 86.1 % at FSD 2.2 / 2.7, areas kept 95 / 98 %: the same, not kept.
Each sprite's mask opened by a 3x3 square before it moves (`--config.g.mask_opening=1`: no speck
or line thinner than 3 pixels; seed 0, 3 min 56 s beside another run): 78.7 % at FSD 2.2, crisp
90 %, areas kept 94 %. Each sprite's colour brightened to a full channel
(`--config.g.bright_colours=True`, which lifted the class-conditional config's label accuracy;
seeds 0 / 1 side by side): 72.5 / 59.6 % at FSD 2.5 / 2.9, colours kept 91 / 88 %, off-palette 8 /
15 %: the dim level-logit colours it turns bright (black to white, half red to red) are not the
ones G meant. Neither kept.

The colour logits alone, with R1 at gamma 0.1 (the main job's change before its R1; same Xeon):
77.3 / 80.5 / 18.4 % passing at step 2000, FSD 2.1 / 2.7 / 27.8: on seed 2 D pulled away from G at
about step 1100 and G's sprites grew into large overlapping squares.

The recipe before the colour logits (each channel tanh(6 x a Dense) rounded to 3 levels, R1 at gamma
0.1; same Xeon and seeds): FSD by eval step 1000: 5.3 / 5.6 / 4.1; 2000: 3.4 / 3.3 / 4.3. The
physics check passed 63.9 / 55.9 / 56.2 % of the clips at step 1000 and 70.3 / 69.7 / 60.4 % at step
2000; at step 2000 right object count in every frame 95 / 94 / 92 %, colours kept 100 / 99 / 97 %,
areas kept 92 / 93 / 89 %, motion 93 / 92 / 87 %, crisp 81 / 81 / 80 % (off-palette 13 / 15 / 15 %
of the non-background pixels), frozen objects under 1 %. Its samples/step_002000.png of seed 0: one
or two objects per clip, every one in a palette colour (yellow, white, blue, cyan, magenta, red),
each keeping its colour and shape as it glides; the outlines ragged blobs with notches, one blue
object cut by black stripes, and one clip holding two red objects (a red disc and a red comb-like
shape) where the data's objects always differ in colour. Time: 3 min 34 s wall for seed 0 alone on
that Xeon.

Longer did not pay with the rounded colours (same Xeon; the recipe before with more steps):
D pulls ahead of G from about step 2000 (its video head right on about 90 % of the clips by step
3500), and the passing share falls. 4000 steps, the learning rates decayed linearly to a tenth over
the second half: seed 0 passed 68.4 % at step 2000 (FSD 2.6; not this config's run, though its
learning rate was the same until then: the schedule compiles to another graph, which rounds
differently from step 50 on) and 57.0 % at step 4000 (FSD 3.8, colours kept 86 %); with R1 at gamma
1 instead of 0.1, 67.6 and 61.1 % (FSD 2.7, 3.9). 2500 steps, decayed from step 1250: 62.1 / 61.7 %
(FSD 2.9 / 3.8; seeds 0 / 1). 10000 steps, decayed from step 5000 (the config before): 68.4 % at
step 2000, 62.9 % at 4000 (FSD 4.6), then 54.3 % at 6000 (FSD 33.6) and 39.1 % at 8000 (FSD 154;
stopped there), D right on every clip.

With the steered sprites before (session 39; seed 0, 10000 steps decayed from step 5000, EMA 0.995):
FSD by eval step 2000: 2.9; 4000: 3.4; 6000: 3.8; 8000: 3.0; 10000: 3.4. The physics check passed
28.7 / 34.0 / 31.8 / 31.2 / 32.0 % of the clips at those steps; at step 10000 off-palette 8 % of the
non-background pixels, right object count in every frame 92 %, colours kept 94 %, areas kept 87 %
(area CV 0.04, real 0.03), motion 50 % (RMS distance from the fitted bounce 0.75 px), crisp 88 %,
frozen objects 2 %, 1.26 objects per clip (the data: 1.49). samples/step_010000.png: solid objects
in palette colours (red, blue, green, yellow, cyan, orange, white), several of them squares, one or
two per clip, keeping shape and colour as they move; one red square carries a yellow speck and one
green object is a ragged streak. Past step 2000 the extra steps cleaned the colours (off-palette 17
-> 8 %, crisp 77 -> 88 %) but not the motion (43-51 %). Time: 28 min 47 s wall while it shared the 2
cores with one or two other runs for most of its length; alone about 20 minutes (the layered G of
session 38 took 18 min 41 s alone on that host). The figures that follow are the recipe before the
sprites (G's frame generator drawing every frame), 10000 steps decayed from step 5000.

Time: about 9 minutes wall on 2 idle cores of an Intel Xeon with AVX-512 and AMX, the shapes
feature network cached (training it adds 20-40 s), 6 evaluations of 512 clips and compilation
included. That is an estimate: the runs below shared their cores with other runs, and the
5000-step config before this one took 4 min 47 s alone there, of which 5000 steps at about 21
steps/s; the steps double here. The 10000-step config before the output gain took 10 min 01 s on
that Xeon with the feature network trained, and 19 min 58 s on a 2-core AMD EPYC (AVX2) before
R1: inside the 30 minutes this config may take.

Expected (bitwise reproducible per CPU; Intel Xeon, seeds 0 / 1 / 2 with `--config.seed=S`; real
clips: FSD 1.7, pass 100 %, off-palette 0 %): FSD by eval step 2000: 3.7 / 4.4 / 5.4; 4000: 3.2 /
4.3 / 4.6; 6000: 3.5 / 4.5 / 3.5; 8000: 3.2 / 4.7 / 3.3; 10000: 3.4 / 4.5 / 3.9. At step 10000 the
physics check passes 0 / 0.2 / 0 % of clips (seed 1: one clip of 512): off-palette 17 / 18 / 17 % of
the non-background pixels, right object count in every frame 83 / 85 / 84 % of clips, colours kept
84 / 86 / 87 %, areas kept 57 / 54 / 57 % (area CV 0.08 / 0.09 / 0.09, real 0.03), motion 50 / 47 /
45 %, frozen objects 3 / 5 / 4 %, objects per clip 1.60 / 1.58 / 1.60 (the data: 1.5), crisp clips 0
/ 0.2 / 0.2 %. samples/step_010000.png of seed 0: solid squares and discs in palette colours, their
edges ragged by a pixel; two cyan objects, a red one and a blue one keep their colour and shape as
they move, two clips hold yellow objects filled with a red-and-yellow checkerboard (the pattern of
G's stride-2 transposed convolutions), one blue square grows a cyan patch, and one yellow blob turns
partly green at the end. The issue's targets for this config (90 % pass, FSD at most 3) are not met:
the count, colours and motion of most clips are now right, but nearly no clip has the data's sharp
edges (about 70 % of the off-palette pixels in that grid border the background).

Tried with the gain and not kept (same Xeon, step 10000, seeds 0 / 1 / 2 of this recipe above: FSD
3.4 / 4.5 / 3.9, off-palette 17 / 18 / 17 %, right count 83 / 85 / 84 %, colours kept 84 / 86 / 87
%, areas kept 57 / 54 / 57 %, motion 50 / 47 / 45 %, pass 0 / 0.2 / 0 %). G's base width 32
(`--config.g.base_width=32`; seeds 0 / 1 / 2): FSD 4.1 / 4.3 / 3.4, off-palette 16 / 17 / 15 %,
right count 88 / 86 / 84 %, colours kept 89 / 85 / 81 %, areas kept 62 / 62 / 58 %, motion 46 / 45 /
43 %, crisp clips 0.4 / 2.1 / 0 %, pass 0.4 / 1.0 / 0 % (2, 5 and 0 clips of 512): the same mean FSD
(3.9), a point or two fewer pixels off the palette, more areas kept and less motion, and the most
passing clips at step 10000 of any run yet, for 11 min 30 s wall alone (seed 2, feature network
cached), about a quarter more than this recipe (on the AMD EPYC, about 26 of the 30 minutes); its
grid of seed 1 still holds orange objects drawn as a red-and-yellow checkerboard and a red square
that turns magenta. G's last upsampling as a resize layer (`--config.g.resize_layers=1`, against
that checkerboard; seeds 0 / 1): FSD 4.3 / 4.6, off-palette 21 / 18 %, right count 90 / 81 %,
colours kept 87 / 77 %, areas kept 63 / 61 %, motion 46 / 48 %, pass 0.2 / 0.2 %; its grid of seed 0
still shows an orange object dithered red and yellow, in blocks of the layer before. All three
upsamplings as resize layers (`resize_layers=3`, seed 0, stopped at step 2000): FSD 9.7 against 3.7.

Steps and G's output gain are the latest changes (same Xeon and seeds). The 5000-step config with
the gain (learning rates decayed from step 2500) ended at FSD 3.4 / 4.0 / 4.4, off-palette 21 / 19 /
21 %, right count 72 / 73 / 76 %, colours kept 70 / 74 / 76 %, areas kept 60 / 40 / 51 %, motion 40
/ 16 / 40 %, frozen objects 3 / 5 / 3 %, and its grid of seed 0 showed more clips that change colour
and striped blocks. Twice the steps keep the FSD within that spread and lift the count, colours and
motion components by 10 to 30 points. Without the gain (gain 1, same Xeon and seeds) the 5000-step
config ended at FSD 3.0 / 2.9 / 3.4, off-palette 28 / 26 / 26 %, right count 60 / 53 / 62 %, colours
kept 61 / 53 / 56 %, areas kept 48 / 38 / 46 %, motion 34 / 31 / 41 %, frozen objects 3 / 4 / 2 %
(FSD by step 1000 to 4000: 11.4 / 10.1 / 9.4, 6.4 / 5.8 / 7.0, 3.2 / 3.0 / 4.3, 2.8 / 2.7 / 3.3),
and its grid of seed 0 showed more two-coloured and speckled blobs. The gain lowers the FSD early
(by step 2000) and the off-palette share throughout, and at the end keeps the count and colours of
10 to 20 points more clips, but ends with an FSD about 1 higher: the FSD and the physics check
disagree here, as they did over 10000 steps (below). The gain is kept for what the physics check and
the grid show.

Before the gain this config ran the main job's new optimiser for 5000 steps (above), half the steps
of the config before it. That one (10000 steps, Adam 5e-4 with betas 0.5 and 0.999) ended at FSD 3.4
/ 2.6 / 3.5 on the same Xeon in about 10 minutes; with the new optimiser for 10000 steps (seed 0)
the FSD fell to 2.7 at step 4000 and then climbed to 4.7 by step 10000 while the physics components
kept improving (right count 83 %, colours kept 80 %, areas kept 55 %, motion 48 %, off-palette 24 %
at the end; no clip passing). The history follows.

The 10000-step config with the old optimiser. Time (that config): 19 min 58 s wall on a 2-core AMD
EPYC (AVX2), 10000 steps at 8-9 steps/s plus the shapes feature network, 6 evaluations of 512 clips
and compilation; peak RSS 1.6 GB.

Expected (seed 0, measured in one run; real clips: FSD 1.7, pass 100 %, off-palette 0 %), by eval
step: FSD 9.9 (2000), 5.1 (4000), 4.9 (6000), 4.2 (8000), 4.7 (10000). At step 10000 the
physics check passes no clip yet: off-palette 22 % of the non-background pixels (main job: 86
%), right object count in every frame 57 % of clips, colours kept 60 %, areas kept 51 % (area CV
0.17, real 0.03), motion 38 %, frozen objects 2 %, crisp clips 0 %. samples/step_010000.png:
one or two solid blobs per clip in clear palette colours (yellow, cyan, green, magenta, blue,
red) that keep their colour and mostly their place; edges are ragged rather than sharp, a few
clips add small specks, and two blobs change shape across the frames. The issue's targets for
this config (90 % pass, FSD at most 3) are not met.

The run above predates two changes that config inherited from the main job: the minibatch-std
channel on D's video head and sampling with standing batch-norm statistics. With both, on 2 idle
cores of an Intel Xeon with AVX-512 and AMX (seed 0; the shapes feature network trained): 8 min 57 s
wall, peak RSS 1.6 GB; FSD 8.4 (2000), 7.2 (4000), 6.8 (6000), 6.4 (8000), 6.4 (10000). At step
10000 the physics check passes no clip: off-palette 22 %, right count 35 %, colours kept 42 %, areas
kept 32 % (area CV 0.22), motion 30 %, frozen objects 5 %, crisp clips 0 %; with the running
statistics instead the same generator scores the same (FSD 6.43, off-palette 22 %): after 10000
steps the EMA's own statistics no longer differ. samples/step_010000.png: solid blobs in palette
colours (blue, yellow, green, red, cyan, white), mostly one colour each and moving; edges ragged, a
few clips with specks, one blob that turns from yellow to green and one clip whose red blob vanishes
after the fifth frame. Different CPUs train different generators, so the two runs are not a
comparison of recipes.

It also inherited the main job's lazy R1 (gamma 0.1 on every 32nd D update). On the same Xeon (seed
0; the shapes feature network trained): 10 min 01 s wall, peak RSS 1.8 GB; FSD 9.8 (2000), 5.1
(4000), 3.5 (6000), 2.9 (8000), 3.4 (10000), half of the run without R1 above from step 6000 on, the
same CPU. At step 10000 the physics check passes no clip yet: off-palette 28 %, right count 57 %,
colours kept 53 %, areas kept 43 % (area CV 0.19), motion 35 %, frozen objects 2 %, frames without
an object 1.5 %, crisp clips 0 %. samples/step_010000.png: solid, nearly square blocks in palette
colours (yellow, white, green, red, orange, magenta), one or two per clip, moving across the frames;
edges still ragged, one yellow block turns white and another gains a green fringe, and a blue one
flickers. The issue's targets (90 % pass, FSD at most 3 at the end) are not met: the FSD reached 2.9
at step 8000 and rose to 3.4 by the end. Seed 1 (`--config.seed=1`, same Xeon): FSD 10.4, 6.0, 2.9,
2.7, 2.6 at the same steps; at step 10000 off-palette 22 %, right count 62 %, colours kept 65 %,
areas kept 50 % (area CV 0.17), motion 45 %, frozen 2 %, crisp clips 0 %, so again no clip passes:
no generated clip has the data's sharp edges. Seed 2: FSD 3.5 at step 10000, off-palette 22 %, right
count 62 %, colours kept 57 %, areas kept 48 %, motion 33 %.

Tried and not kept: G's base width 32 (`--config.g.base_width=32`, same Xeon, feature network
cached), which lowered the main job's FSD from 13.4 to 10.0 on average over three seeds. Here,
seeds 0 / 1 / 2 at step 10000: FSD 2.7 / 3.2 / 3.0 (this recipe: 3.4 / 2.6 / 3.5), off-palette
23 / 25 / 25 % (28 / 22 / 22 %), right count 64 / 61 / 68 % (57 / 62 / 62 %), colours kept 65
/ 64 / 66 % (53 / 65 / 57 %), motion 39 / 34 / 42 % (35 / 45 / 33 %), frozen objects 4-5 %
(2-5 %), no clip passing. It leads early (FSD 6.2 / 8.0 / 6.0 at step 2000 against 9.8 /
10.4 / 6.9) and ends within the spread of three seeds of this recipe, at 12 min 11 s wall
against 8 min 56 s (+34 %); on the AMD EPYC (19 min 58 s for this config before R1) that
estimates to about 28 minutes, near the 30-minute budget.

Tried (session 38, same Xeon kind on a slower host, seed 0, feature network cached): the main job's
layered G (`--config.g.layers=2 --config.g.mask_gain=12 --config.g.lr_multipliers.layer_colours=5
--config.g.lr_multipliers.layer_presence=5`; gan_jax/models/mocogan.py, the main job's docstring).
FSD 5.5 / 5.4 / 5.6 / 5.8 / 6.0 at steps 2000 / 4000 / 6000 / 8000 / 10000 (this config: 3.7 / 3.2 /
3.5 / 3.2 / 3.4), and at step 10000 off-palette 15 % (17 %), right count 92 % (83 %), colours kept
98 % (84 %), areas kept 64 % (57 %), motion 51 % (50 %), frozen 5 % (3 %), crisp clips 5.9 % (0 %),
passing clips 2.5 % (0 %: 13 of 512 against none), frames without an object 6.9 %, 1.05 objects per
clip (the data: 1.49), in 18 min 41 s wall with another run beside it for its first 2000 steps.
samples/step_010000.png: one object per clip in most rows, each one palette colour throughout
(green, yellow, red, magenta, blue), outlines ragged by a pixel, and one orange object dotted with
red (the two layers interleaved). It keeps the count and colours of more clips and makes the first
passing ones, but its FSD is 1.8 times this config's, and it draws far fewer clips of two objects
than the data (1.05 objects per clip against 1.49); not kept yet. With the masks at gain 6 and no
presence head (colour head at 5 times): FSD 7.7 / 6.0 / 3.4 at steps 2000 / 4000 / 8000, 6.2 at
10000, right count 85 %, colours kept 89 %, crisp 2.0 %, no clip passing.
"""

from pathlib import Path

from gan_jax.config import load_config_file


def get_config():
    cfg = load_config_file(Path(__file__).with_name("bouncing_shapes.py"))
    # Batches of 64 for 1250 steps: 90-94 % of the clips passed at FSD 2.0-3.1 over five seeds,
    # where batches of 32 for 1000 steps passed 84-94 % at FSD 2.4-3.8 (docstring).
    cfg.batch_size = 64
    cfg.steps = 1250
    cfg.ema.decay = 0.995
    cfg.ckpt.every = 1250
    cfg.log.sample_every = 1250
    cfg.eval.every = 1250
    return cfg
