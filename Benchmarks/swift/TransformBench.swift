// Image augmentation throughput: random crop 32 with padding 4, then a horizontal flip (p 0.5),
// on a batch of 128 CIFAR-sized images [3, 32, 32]. torch_bench.py times torchvision v2 on the
// same batch.
import EmberCore
import EmberNN

func transformBench(_ o: Options) throws {
    let threads = try o.int("threads", 1)
    try Engine.setNumThreads(threads)
    var rng = RandomGenerator(seed: 1)
    let batch = try Tensor.uniform([128, 3, 32, 32], rng: &rng)
    let pipeline = try ImageTransformPipeline(transforms: [
        .randomCrop(RandomCropOptions(height: 32, width: 32, padding: ImagePadding(4))),
        .randomHorizontalFlip(p: 0.5),
    ])
    let seconds = try secondsPerCall { _ = try pipeline.apply(batch, training: true, rng: &rng) }
    emit([("system", .text("ember-swift")), ("bench", .text("random_crop(32, padding 4) + hflip, 128x3x32x32")),
          ("images_per_s", .number(128 / seconds)), ("ms_per_batch", .number(seconds * 1e3))])
}
