#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (Fuzz/corpus/<target>/, committed): small valid
inputs copied from the test fixtures or written out below, so that the fuzzers start from inputs
that reach deep into each reader. Run from anywhere: python3 Fuzz/make_corpus.py"""
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Fuzz" / "corpus"
FIXTURES = ROOT / "Tests" / "EmberNNTests" / "Fixtures"
R_FIXTURES = ROOT / "rpkg" / "tests" / "testthat" / "fixtures"

MLP = {"format": "ember.network", "version": 1,
       "inputs": [{"name": "num", "kind": "numeric", "features": 4},
                  {"name": "categ", "kind": "categorical", "cardinalities": [3, 2]}],
       "nodes": [{"id": "one_hot", "op": "one_hot", "inputs": ["categ"]},
                 {"id": "features", "op": "merge_cat", "inputs": ["num", "one_hot"], "params": {"dim": -1}},
                 {"id": "linear_0", "op": "linear", "inputs": ["features"], "params": {"out_features": 8}},
                 {"id": "act_0", "op": "relu", "inputs": ["linear_0"]},
                 {"id": "head", "op": "head", "inputs": ["act_0"]}],
       "output": "head"}
LENET = {"inputs": [{"name": "image", "kind": "tensor", "shape": [1, 12, 12]}],
         "nodes": [{"id": "conv1", "op": "conv2d", "inputs": ["image"], "params": {"out_channels": 4, "kernel_size": 5, "padding": 2}},
                   {"id": "relu1", "op": "relu", "inputs": ["conv1"]},
                   {"id": "pool1", "op": "max_pool2d", "inputs": ["relu1"], "params": {"kernel_size": 2}},
                   {"id": "flatten", "op": "flatten", "inputs": ["pool1"]},
                   {"id": "head", "op": "head", "inputs": ["flatten"]}],
         "output": "head"}
BLOCK = {"inputs": [{"name": "x", "kind": "tensor", "shape": [8]}],
         "nodes": [{"id": "norm", "op": "batch_norm", "inputs": ["x"]},
                   {"id": "linear_first", "op": "linear", "inputs": ["norm"], "params": {"out_features": 16}},
                   {"id": "activation", "op": "relu", "inputs": ["linear_first"]},
                   {"id": "dropout_first", "op": "dropout", "inputs": ["activation"], "params": {"p": 0.1}},
                   {"id": "linear_second", "op": "linear", "inputs": ["dropout_first"], "params": {"out_features": 8}},
                   {"id": "residual", "op": "merge_sum", "inputs": ["x", "linear_second"]}],
         "output": "residual"}
RESNET = {"inputs": [{"name": "num", "kind": "numeric", "features": 3}],
          "nodes": [{"id": "stem", "op": "linear", "inputs": ["num"], "params": {"out_features": 8}},
                    {"id": "blocks", "op": "repeat", "inputs": ["stem"], "params": {"times": 2}, "body": BLOCK},
                    {"id": "head", "op": "head", "inputs": ["blocks"]}],
          "output": "head"}
FN = {"inputs": [{"name": "num", "kind": "numeric", "features": 3}],
      "nodes": [{"id": "f", "op": "fn", "inputs": ["num"],
                 "params": {"expr": {"op": "add", "args": [{"op": "tanh", "args": [{"arg": 0}]}, {"const": 0.5}]}}},
                {"id": "head", "op": "head", "inputs": ["f"]}],
      "output": "head"}

TRANSFORMS = [
    [{"op": "normalize", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}],
    {"format": "ember.image_transforms", "version": 1,
     "transforms": [{"op": "random_resized_crop", "size": [5, 5]}, {"op": "random_horizontal_flip"},
                    {"op": "color_jitter", "brightness": 0.2, "contrast": 0.2, "saturation": 0.2}]},
    [{"op": "pad", "padding": [1, 2, 3, 4], "padding_mode": "reflect"}, {"op": "center_crop", "size": [6, 6]}],
    [{"op": "resize", "size": 5}, {"op": "grayscale", "num_output_channels": 3}, {"op": "vflip"}],
    [{"op": "random_crop", "size": [6, 6], "padding": 2, "pad_if_needed": True, "fill": 0.5}],
    [{"op": "affine", "angle": 30, "translate": [1, 2], "scale": 1.2, "shear": [5, 3], "interpolation": "bilinear", "fill": [0.1, 0.2, 0.3]}],
    [{"op": "random_affine", "degrees": [-10, 10], "translate": [0.1, 0.2], "scale": [0.8, 1.2], "shear": [-5, 5, -2, 2]},
     {"op": "random_rotation", "degrees": 15, "interpolation": "bilinear"}],
    [{"op": "rotate", "angle": 90}, {"op": "crop", "top": 1, "left": 1, "height": 4, "width": 5},
     {"op": "resized_crop", "top": 0, "left": 0, "height": 3, "width": 3, "size": [4, 4]},
     {"op": "adjust_brightness", "brightness_factor": 1.5}, {"op": "adjust_contrast", "contrast_factor": 0.5},
     {"op": "adjust_saturation", "saturation_factor": 2}],
]

CONFIGS = [
    {"network": MLP, "task": "multiclass", "class_names": ["a", "b", "c"], "seed": "7",
     "standardize": {"num": [True, False, True, True]}},
    {"network": json.dumps(LENET), "task": "binary", "seed": 1,
     "transforms": {"image": {"data_shape": [1, 14, 14], "transforms": [{"op": "center_crop", "size": [12, 12]}]}}},
    {"network": RESNET, "task": "quantile_regression", "quantiles": [0.1, 0.5, 0.9], "seed": "3", "host": {"learner": "x"}},
    {"network": FN, "task": "regression", "standardize_target": False, "output_link": "exp", "seed": "2"},
    {"network": MLP, "task": "multilabel", "n_labels": 3, "seed": "5"},
    # Trainer configurations (read against the fuzz target's multiclass model).
    {"batch_size": 4, "optimizer": {"kind": "adam", "lr": 0.05, "betas": [0.9, 0.99]}, "measures_train": ["accuracy"]},
    {"optimizer": {"kind": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
     "loss": {"kind": "cross_entropy", "class_weights": [1, 2, 1], "reduction": "sum"},
     "schedule": {"kind": "one_cycle", "max_lr": 0.1, "total_steps": 100}},
    {"batch_size": 8, "shuffle": False, "drop_last": True, "optimizer": {"kind": "adamw", "weight_decay": 0.01},
     "schedule": {"kind": "reduce_on_plateau", "mode": "max", "patience": 2},
     "measures_valid": ["logloss", "accuracy"], "patience": 3, "min_delta": 0.01, "restore_best_weights": True},
    {"loss": {"kind": "expression", "expr": {"op": "mean", "args": [{"op": "square", "args": [
        {"op": "sub", "args": [{"op": "select", "args": [{"arg": 0}], "dim": 1, "index": 0}, {"arg": 1}]}]}]}},
     "schedule": {"kind": "cosine_annealing", "t_max": 10}, "eval_freq": 2, "batch_size_predict": 64},
]

IMAGES = ["gray.png", "rgb.png", "rgba.png", "gray_alpha.png", "gray1.png", "gray16.png", "rgb16.png", "palette.png",
          "palette4.png", "palette_trns.png", "interlaced.png", "gray.jpg", "rgb.jpg", "rgb444.jpg", "progressive.jpg",
          "cmyk.jpg", "truncated.png", "truncated.jpg"]


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    for f in ["swift_mlp.safetensors", "r_iris_mlp.safetensors"]:
        write("model-file", f, (R_FIXTURES / f).read_bytes())
    for f in ["torch_model.safetensors", "torch_written.safetensors"]:
        write("safetensors", f, (FIXTURES / f).read_bytes())
    write("safetensors", "swift_mlp.safetensors", (R_FIXTURES / "swift_mlp.safetensors").read_bytes())
    for i, c in enumerate(CONFIGS):
        write("config", f"config_{i}.json", c)
    for name, net in [("mlp", MLP), ("lenet", LENET), ("block", BLOCK), ("resnet", RESNET), ("fn", FN)]:
        write("network", f"{name}.json", net)
    for i, t in enumerate(TRANSFORMS):
        write("image-transform", f"transforms_{i}.json", t)
    for f in IMAGES:
        write("image", f, (FIXTURES / "images" / f).read_bytes())


if __name__ == "__main__":
    main()
