"""Processing algorithm ``landcoverunet:trainunet``: images + masks -> a trained U-Net model file.

Processing runs it in a background task, so QGIS stays usable; it touches neither the project
nor the GUI. TensorFlow is imported only inside :meth:`execute` (through the backend).
"""
from __future__ import annotations

from qgis.core import (QgsProcessing, QgsProcessingOutputFile, QgsProcessingOutputNumber,
                       QgsProcessingOutputString,
                       QgsProcessingParameterBand, QgsProcessingParameterBoolean,
                       QgsProcessingParameterDefinition, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer)

from ..backend.core.choices import DEVICES, LOSSES, MODEL_SIZES, PRESETS
from ..backend.core.errors import UserError
from ..backend.model.keras_file import MODEL_EXTENSIONS
from ..backend.core.output_checks import HTML_EXTENSIONS
from ..backend.training.config import (CROSS_VALIDATION_BELOW, FEW_PIXELS, FOLDS,
                                       LABEL_SMOOTHING, NEAR_BEST, PIXELS_PER_EPOCH, RANGES,
                                       VALIDATED_SHARE, cancelled_name, config_default,
                                       model_companions)
from ..backend.training.interval import FEW_FEATURES
from ..backend.training.schedule import END_SHARE
from ..backend.training.teacher import LINEAR_SHARE, NEIGHBOURHOODS, PSEUDO_WEIGHT
from .base import FeedbackProgress, LandCoverAlgorithm

MODEL_SIZE_LABELS = {
    "small": "Small (spectral-first: per-pixel path + depth-1 context, fast on a CPU)",
    "medium": (f"Medium (depth {PRESETS['medium'].depth}, {PRESETS['medium'].filters} filters; "
               "for many labels, about 6x slower)"),
    "large": (f"Large (depth {PRESETS['large'].depth}, {PRESETS['large'].filters} filters; for "
              "many labels and a GPU)")}
LOSS_LABELS = {"cross_entropy": "Cross-entropy",
               "weighted_cross_entropy": "Class-weighted cross-entropy", "focal": "Focal",
               "dice": "Dice", "focal_dice": "Focal + Dice"}
DEVICE_LABELS = {"auto": "Automatic (GPU when there is one)", "cpu": "CPU", "gpu": "GPU"}


def _limits(name: str) -> dict:
    """The dialog's limits of a numeric setting: the backend's own (``config.RANGES``)."""
    low, high = RANGES[name]
    return {"minValue": low} | ({"maxValue": high} if high is not None else {})


class TrainUNetAlgorithm(LandCoverAlgorithm):
    """Trains a U-Net on an image and its training mask (and optionally more scenes)."""

    INPUT = "INPUT"
    MASK = "MASK"
    EXTRA_IMAGES = "EXTRA_IMAGES"
    EXTRA_MASKS = "EXTRA_MASKS"
    BANDS = "BANDS"
    TILE_SIZE = "TILE_SIZE"
    MODEL_SIZE = "MODEL_SIZE"
    EPOCHS = "EPOCHS"
    BATCH_SIZE = "BATCH_SIZE"
    LEARNING_RATE = "LEARNING_RATE"
    LOSS = "LOSS"
    AUGMENT = "AUGMENT"
    VALIDATION_FRACTION = "VALIDATION_FRACTION"
    PATIENCE = "PATIENCE"
    SEED = "SEED"
    TEACHER = "TEACHER"
    TIME_LIMIT = "TIME_LIMIT"
    FINAL_FIT = "FINAL_FIT"
    ENSEMBLE = "ENSEMBLE"
    RESUME = "RESUME"
    STEPS_PER_EPOCH = "STEPS_PER_EPOCH"
    INIT_MODEL = "INIT_MODEL"
    DEVICE = "DEVICE"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    TENSORBOARD_DIR = "TENSORBOARD_DIR"
    OUTPUT_CSV = "OUTPUT_CSV"
    BEST_VAL_MIOU = "BEST_VAL_MIOU"
    VAL_MIOU = "VAL_MIOU"
    VAL_MIOU_LOW = "VAL_MIOU_LOW"
    VAL_MIOU_HIGH = "VAL_MIOU_HIGH"
    FOREST_VAL_MIOU = "FOREST_VAL_MIOU"
    MODEL_HOLDS = "MODEL_HOLDS"
    EPOCHS_RUN = "EPOCHS_RUN"

    NAME = "trainunet"
    DISPLAY_NAME = "Train U-Net"
    GROUP = "training"
    ADVANCED = (TILE_SIZE, BATCH_SIZE, LEARNING_RATE, LOSS, AUGMENT, VALIDATION_FRACTION,
                PATIENCE, SEED, TEACHER, FINAL_FIT, ENSEMBLE, RESUME, STEPS_PER_EPOCH, INIT_MODEL,
                DEVICE, TENSORBOARD_DIR)
    HELP = (
        "Trains a U-Net (a fully convolutional segmentation network) on an image and the "
        "training mask made for it by 'Build training masks', and writes one .keras model file "
        "that carries everything 'Classify raster' needs: bands, normalisation, classes, names "
        "and colours.\n\n"
        "Partial labels are the normal case: only labelled pixels (mask > 0, image with data) "
        "count. Training windows are drawn around the labels, rarer classes and smaller "
        "polygons more often. Whole digitised features (polygons, points) of each class are "
        "held out for validation and their labels never reach the training, so the validation "
        "mIoU estimates how the map does on polygons it never saw.\n\n"
        "A per-pixel teacher fitted on the training labels (a random forest, with a logistic "
        "regression's vote) teaches the network the spectra of the rest of the scene (soft "
        "pseudo-labels), and is also distilled into a small per-pixel network (the forest "
        "network). Validation scores the teacher (as 'forest'), the U-Net, "
        "the forest network and the mean of the last two side by side on the same held-out "
        "features; the model file holds that mean unless one network alone validates better "
        f"with confidence on at least {FEW_FEATURES} features of every class, so the map cannot "
        "lose badly to the forest on your labels. It stays "
        "one Keras network that classifies without scikit-learn. The estimate comes with a 90 % "
        "interval (whole features resampled). Each validated run trains on fewer features "
        "than the model file, so validation is on the low side: the interval's upper end "
        "reaches the model's figure on its own training pixels, and where every class has "
        f"{FEW_FEATURES} validated features or more the estimate weighs validation by the "
        "share of features each run trained on and that figure by the rest (Efron's .632 "
        "rule). The report says when the interval rests on "
        f"fewer than {FEW_FEATURES} features of a class, names classes it does not "
        f"validate, warns about classes under {FEW_PIXELS} labelled pixels and about any class "
        "the model does not predict on its own training pixels. Each epoch is a fixed number "
        "of sampled windows; the latest epoch that validation cannot tell from the best (a "
        "bootstrap over the held-out features; the latest epoch outright where a class has "
        f"fewer than {FEW_FEATURES} of them) is chosen, and training stops early when it "
        "stalls; then the model is trained again on all features for that many epochs. The "
        "network trains on labels smoothed by "
        f"{LABEL_SMOOTHING:g} (a few polygons should not make it sure); the model file says so, "
        "and classification undoes it, so that the confidence of Classify raster (and the "
        "ranking of Where to digitise next) is a probability: the report shows the calibration "
        "error on the held-out features before and after, with a reliability diagram. Cancel "
        "stops after the current batch and writes the best model so far beside the output, as "
        "<name>.cancelled.keras: "
        "a cancelled run never replaces an earlier model. The model, its epoch log and the "
        "report replace earlier ones together, only once all three are written.\n\n"
        "Runs on the GPU (mixed precision) when TensorFlow sees one, otherwise on the CPU. The "
        "report shows learning curves, per-class scores, the reliability diagram, the confusion "
        "matrix and validation tiles; a CSV of epochs is written beside the model.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Training image"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.MASK, "Training mask (from 'Build training masks')"))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.EXTRA_IMAGES, "More training images (same bands)", QgsProcessing.TypeRaster,
            optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.EXTRA_MASKS, "Their masks (same order)", QgsProcessing.TypeRaster,
            optional=True))
        self.addParameter(QgsProcessingParameterBand(
            self.BANDS, "Bands to use (none chosen: all)", None, self.INPUT, optional=True,
            allowMultiple=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE_SIZE, "Tile size (pixels)", QgsProcessingParameterNumber.Integer,
            defaultValue=config_default("tile_size"), **_limits("tile_size")))
        self.addParameter(QgsProcessingParameterEnum(
            self.MODEL_SIZE, "Model size", [MODEL_SIZE_LABELS[s] for s in MODEL_SIZES],
            defaultValue=MODEL_SIZES.index(config_default("model_size"))))
        self.addParameter(QgsProcessingParameterNumber(
            self.EPOCHS, "Maximum epochs", QgsProcessingParameterNumber.Integer,
            defaultValue=config_default("epochs"), **_limits("epochs")))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Batch size (windows per step)",
            QgsProcessingParameterNumber.Integer, defaultValue=config_default("batch_size"),
            **_limits("batch_size")))
        self.addParameter(QgsProcessingParameterNumber(
            self.LEARNING_RATE, "Learning rate (peak of a warm-up + cosine schedule)",
            QgsProcessingParameterNumber.Double, defaultValue=config_default("learning_rate"),
            **_limits("learning_rate")))
        self.addParameter(QgsProcessingParameterEnum(
            self.LOSS, "Loss", [LOSS_LABELS[name] for name in LOSSES],
            defaultValue=LOSSES.index(config_default("loss"))))
        self.addParameter(QgsProcessingParameterBoolean(
            self.AUGMENT, "Augment (flips, rotations, radiometric jitter)",
            defaultValue=config_default("augment")))
        self.addParameter(QgsProcessingParameterNumber(
            self.VALIDATION_FRACTION, "Share of labels held out for validation",
            QgsProcessingParameterNumber.Double,
            defaultValue=config_default("validation_fraction"),
            **_limits("validation_fraction")))
        self.addParameter(QgsProcessingParameterNumber(
            self.PATIENCE, "Early stopping patience (epochs)",
            QgsProcessingParameterNumber.Integer, defaultValue=config_default("patience"),
            **_limits("patience")))
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, "Random seed", QgsProcessingParameterNumber.Integer,
            defaultValue=config_default("seed"), **_limits("seed")))
        for name, label in ((self.TEACHER, "Random-forest teacher (pseudo-labels)"),
                            (self.FINAL_FIT, "Train again on all features after validation"),
                            (self.ENSEMBLE, "Average two networks (classifying takes twice as "
                                            "long)"),
                            (self.RESUME, "Resume the interrupted run on this model file (from "
                                          "its checkpoint)")):
            option = QgsProcessingParameterBoolean(
                name, label, defaultValue=config_default(name.lower()))
            option.setFlags(option.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(option)
        self.addParameter(QgsProcessingParameterNumber(
            self.TIME_LIMIT, "Time limit (minutes, 0: none)",
            QgsProcessingParameterNumber.Double, defaultValue=config_default("time_limit"),
            **_limits("time_limit")))
        steps = QgsProcessingParameterNumber(
            self.STEPS_PER_EPOCH, "Steps per epoch (0: automatic)",
            QgsProcessingParameterNumber.Integer, defaultValue=config_default("steps_per_epoch"),
            **_limits("steps_per_epoch"))
        steps.setFlags(steps.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(steps)
        self.addParameter(QgsProcessingParameterFile(
            self.INIT_MODEL, "Start from this model (fine-tune)", optional=True,
            fileFilter="Keras models (*.keras)"))
        self.addParameter(QgsProcessingParameterEnum(
            self.DEVICE, "Device", [DEVICE_LABELS[d] for d in DEVICES],
            defaultValue=DEVICES.index(config_default("device"))))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, "Model file", "Keras models (*.keras)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, "Training report", "HTML files (*.html)", optional=True,
            createByDefault=True))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.TENSORBOARD_DIR, "TensorBoard log folder", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputFile(self.OUTPUT_CSV, "Epoch log (CSV)"))
        self.addOutput(QgsProcessingOutputNumber(self.BEST_VAL_MIOU,
                                                 "Best epoch's validation mean IoU"))
        self.addOutput(QgsProcessingOutputNumber(
            self.VAL_MIOU, "Estimated mean IoU on polygons training never saw (see the report)"))
        self.addOutput(QgsProcessingOutputNumber(
            self.VAL_MIOU_LOW, "Lower end of the estimate's 90 % interval (whole features "
            "resampled)"))
        self.addOutput(QgsProcessingOutputNumber(
            self.VAL_MIOU_HIGH, "Upper end of the estimate's 90 % interval"))
        self.addOutput(QgsProcessingOutputNumber(
            self.FOREST_VAL_MIOU, "The teacher's (random forest and logistic regression) mean "
            "IoU on the same held-out features"))
        self.addOutput(QgsProcessingOutputString(
            self.MODEL_HOLDS, "What the model file holds (U-Net, forest network or their "
            "average: whichever validated best)"))
        self.addOutput(QgsProcessingOutputNumber(self.EPOCHS_RUN, "Epochs run"))
        self.set_parameter_help(PARAMETER_HELP)

    def execute(self, parameters, context, feedback) -> dict:
        from ..backend.training.train_unet import TrainingConfig, train_unet

        image = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        mask = self.parameterAsRasterLayer(parameters, self.MASK, context)
        if image is None or mask is None:
            raise UserError("Choose the training image and its mask.")
        extra_images = [layer.source() for layer in
                        self.parameterAsLayerList(parameters, self.EXTRA_IMAGES, context)]
        extra_masks = [layer.source() for layer in
                       self.parameterAsLayerList(parameters, self.EXTRA_MASKS, context)]
        if len(extra_images) != len(extra_masks):
            raise UserError(f"{len(extra_images)} more images but {len(extra_masks)} more "
                            "masks: give one mask per image, in the same order.")
        tensorboard = None
        if parameters.get(self.TENSORBOARD_DIR):
            tensorboard = self.parameterAsFileOutput(parameters, self.TENSORBOARD_DIR, context)
        model_path = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None
        model_path = self.keep_beside(model_path, image.source(), MODEL_SUFFIX, ".keras",
                                      feedback, model_companions)
        if report:
            report = self.keep_beside(report, model_path, REPORT_SUFFIX, ".html", feedback)
        self.check_files(parameters, context, [
            self.output(self.OUTPUT_MODEL, model_path, "a Keras model", MODEL_EXTENSIONS,
                        tuple(model_companions(model_path)) if model_path else ()),
            self.output(self.OUTPUT_REPORT, report, "an HTML page", HTML_EXTENSIONS,
                        (cancelled_name(report),) if report else ()),
            self.output(self.TENSORBOARD_DIR, tensorboard, "", (), folder=True)])
        config = TrainingConfig(
            images=[image.source()] + extra_images, masks=[mask.source()] + extra_masks,
            output_model=model_path,
            bands=self.parameterAsInts(parameters, self.BANDS, context) or None,
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            model_size=MODEL_SIZES[self.parameterAsEnum(parameters, self.MODEL_SIZE, context)],
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            loss=LOSSES[self.parameterAsEnum(parameters, self.LOSS, context)],
            augment=self.parameterAsBool(parameters, self.AUGMENT, context),
            validation_fraction=self.parameterAsDouble(parameters, self.VALIDATION_FRACTION,
                                                       context),
            patience=self.parameterAsInt(parameters, self.PATIENCE, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            teacher=self.parameterAsBool(parameters, self.TEACHER, context),
            final_fit=self.parameterAsBool(parameters, self.FINAL_FIT, context),
            ensemble=self.parameterAsBool(parameters, self.ENSEMBLE, context),
            resume=self.parameterAsBool(parameters, self.RESUME, context),
            time_limit=self.parameterAsDouble(parameters, self.TIME_LIMIT, context),
            steps_per_epoch=self.parameterAsInt(parameters, self.STEPS_PER_EPOCH, context),
            init_model=self.parameterAsFile(parameters, self.INIT_MODEL, context) or None,
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            output_report=report,
            tensorboard_dir=tensorboard or None)
        result = train_unet(config, FeedbackProgress(feedback))
        if feedback is not None and feedback.isCanceled():
            # QGIS ends every cancelled run with a red "Execution failed"; this one kept its work
            feedback.pushInfo(f"Cancelled, and kept: the best model so far is complete in "
                              f"'{result.model_path}'. QGIS reports any cancelled run as failed.")
        return {self.OUTPUT_MODEL: result.model_path, self.OUTPUT_REPORT: result.report_path,
                self.TENSORBOARD_DIR: config.tensorboard_dir, self.OUTPUT_CSV: result.csv_path,
                self.BEST_VAL_MIOU: result.best_val_miou, self.VAL_MIOU: result.val_miou,
                self.VAL_MIOU_LOW: result.interval[0] if result.interval else None,
                self.VAL_MIOU_HIGH: result.interval[1] if result.interval else None,
                self.FOREST_VAL_MIOU: result.forest_val_miou, self.MODEL_HOLDS: result.written,
                self.EPOCHS_RUN: result.epochs_run}


MODEL_SUFFIX = "_unet"
"""A model left to a temporary file is kept as ``<training image>_unet.keras`` beside it."""
REPORT_SUFFIX = "_report"


PARAMETER_HELP = {
    TrainUNetAlgorithm.INPUT: "The image to learn from (any number of bands, any data type). "
                              "Its nodata pixels never reach the network.",
    TrainUNetAlgorithm.MASK: "The training mask of this image, made by 'Build training masks': "
                             "on the image's exact grid, 0 = no label, with its class map.",
    TrainUNetAlgorithm.EXTRA_IMAGES: "Optional further scenes with the same bands, to train one "
                                     "model on several images.",
    TrainUNetAlgorithm.EXTRA_MASKS: "The masks of the further scenes, in the same order. Their "
                                    "class ids must agree with the first mask's.",
    TrainUNetAlgorithm.BANDS: "Bands fed to the network, in this order. Leave empty to use all "
                              "bands. Classification will use the same bands.",
    TrainUNetAlgorithm.TILE_SIZE: "Edge of the training windows in pixels, a multiple of 2 to "
                                  "the network depth (2 for small, 16 medium, 32 large). The "
                                  "default 64 draws many small windows around the labels, so "
                                  "each batch mixes many polygons; smaller scenes get smaller "
                                  "windows, with a message. Classification is not limited to "
                                  "this size.",
    TrainUNetAlgorithm.MODEL_SIZE: "Network size. Small (the default) is spectral-first: a "
                                   "per-pixel path over the bands carries the decision and a "
                                   "shallow U-Net adds about 15 pixels of context. With a few "
                                   "dozen polygons it maps unseen polygons better than deeper "
                                   "networks, which learn the polygons' surroundings by heart. "
                                   "Larger sizes need many more labels and time.",
    TrainUNetAlgorithm.EPOCHS: "The most epochs to run. An epoch is a fixed number of sampled "
                               "windows, not a pass over the scene.",
    TrainUNetAlgorithm.BATCH_SIZE: "Windows per training step. Larger batches need more "
                                   "memory.",
    TrainUNetAlgorithm.LEARNING_RATE: "Peak learning rate: reached after a short warm-up, then "
                                      f"lowered along a cosine to {END_SHARE * 100:g} % by the "
                                      "last epoch.",
    TrainUNetAlgorithm.LOSS: "What training minimises. Class-weighted cross-entropy balances "
                             "rare classes; Dice and focal suit very unbalanced labels.",
    TrainUNetAlgorithm.AUGMENT: "Random flips, 90-degree rotations, transposes, per-band "
                                "brightness and offset changes and pixel noise of training "
                                "windows (not validation).",
    TrainUNetAlgorithm.VALIDATION_FRACTION: "Share of each class's digitised features held "
                                            "out whole to measure the model honestly (at least "
                                            "one per class with two or more; a class with one "
                                            "feature trains and is reported as not validated). "
                                            f"With fewer than {CROSS_VALIDATION_BELOW} features, "
                                            f"validation is {FOLDS}-fold cross-validation by "
                                            "whole features instead (each feature held out "
                                            "once), and this share is unused.",
    TrainUNetAlgorithm.TEACHER: "Fit a teacher (scikit-learn) on the training labels: a "
                                "random forest on each pixel's bands and their mean and spread "
                                "over " + " and ".join(f"{n} x {n}" for n in NEIGHBOURHOODS)
                                + " pixels, and a logistic regression on the bands, with "
                                f"{LINEAR_SHARE:.0%} of the vote. Its class probabilities teach "
                                "the network on a sample of the unlabelled pixels, at "
                                f"{PSEUDO_WEIGHT:g} times the weight of real labels. The network "
                                "then learns the spectra of the whole scene rather than the "
                                "surroundings of the polygons. The teacher is also distilled "
                                "into a per-pixel network that the model file may hold, alone "
                                "or averaged with the U-Net (whichever validation supports). "
                                "Off: the U-Net alone, from the labels alone. A scene too large "
                                "to hold in memory is read in blocks near the labels, where the "
                                "training windows lie.",
    TrainUNetAlgorithm.TIME_LIMIT: "Training stops validating after "
                                   f"{VALIDATED_SHARE * 100:g} % of this time (the best epoch "
                                   "so far is kept), so that the final fit on all features fits "
                                   "in the rest. 0: only the epochs and patience limit it.",
    TrainUNetAlgorithm.FINAL_FIT: "After validation has chosen the number of epochs, train "
                                  "again from scratch on all features, held-out ones included, "
                                  "and write that model. The report's validation figures stay "
                                  "those of the run that never saw the held-out features.",
    TrainUNetAlgorithm.ENSEMBLE: "With the final fit, the model file averages the class "
                                 "probabilities of two networks: the final fit's and the "
                                 "validated run's (trained without the held-out features, from "
                                 "another start). Steadier from run to run; classifying takes "
                                 "twice as long.",
    TrainUNetAlgorithm.PATIENCE: "Training stops after this many epochs without a better "
                                 "validation mIoU. The epoch kept is the latest whose "
                                 f"validation mIoU is within {NEAR_BEST} of the best or that "
                                 "the held-out features cannot call worse (on a noisy curve "
                                 "they are a tie, and the later one is more trained). The "
                                 "weights validated and kept are a moving "
                                 "average of the last epoch's weights, which with few labels "
                                 "is steadier than the last step's.",
    TrainUNetAlgorithm.SEED: "Fixes the split, the windows, the teacher and the initial "
                             "weights, so a run can be repeated.",
    TrainUNetAlgorithm.STEPS_PER_EPOCH: "Batches per epoch; 0 chooses about "
                                        f"{PIXELS_PER_EPOCH / 1e6:.1f} million pixels per epoch.",
    TrainUNetAlgorithm.INIT_MODEL: "A model file from an earlier run to start from (same bands "
                                   "and classes), to fine-tune it on new scenes: a new run "
                                   "from its weights. To go on with a killed or cancelled run "
                                   "where it stopped, use 'Resume' instead.",
    TrainUNetAlgorithm.RESUME: "After every epoch, training checkpoints its state (weights, "
                               "optimizer, epoch, learning-rate plan, curves) in a hidden "
                               "folder beside the model file (.<name>.keras.checkpoint). When "
                               "a run was killed or cancelled, run again with the same inputs, "
                               "settings and model file and this option on: it goes on after "
                               "the last whole epoch instead of starting again. A finished run "
                               "removes the checkpoint; a run without this option removes a "
                               "stale one.",
    TrainUNetAlgorithm.DEVICE: "Where to train. Automatic uses the GPU when TensorFlow sees one "
                               "(mixed precision), all of them when there are several (each "
                               "trains on BATCH_SIZE windows of every step), else the CPU. The "
                               "model file is float32 and classifies anywhere.",
    TrainUNetAlgorithm.OUTPUT_MODEL: "The .keras model file. A CSV log of epochs is written "
                                     "beside it (<name>_epochs.csv). A cancelled run writes "
                                     "<name>.cancelled.keras instead and leaves an existing "
                                     "<name>.keras as it was. Left to a temporary file, which "
                                     "QGIS deletes when it closes, the model is kept beside the "
                                     "training image instead, as <image name>"
                                     f"{MODEL_SUFFIX}.keras (numbered rather than replacing an "
                                     "earlier one); the log says where.",
    TrainUNetAlgorithm.OUTPUT_REPORT: "An HTML report: learning curves, per-class scores, the "
                                      "confusion matrix and validation tiles. Left to a "
                                      "temporary file, it is kept beside the model as <model "
                                      f"name>{REPORT_SUFFIX}.html.",
    TrainUNetAlgorithm.TENSORBOARD_DIR: "Optionally, a folder for a TensorBoard log of the same "
                                        "curves and pictures.",
}
