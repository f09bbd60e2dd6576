"""Training data: the synthetic audio-visual event set, the AVE and STAViS readers, per-stage datasets.

Modules (import the one you need; this package file imports nothing):

* ``records``: :class:`VideoRecord` (one video, addressed by index, never by joined strings) and
  :class:`ClassIndex` (sorted class names -> index); event labels from on/off segments.
* ``ave``: the AVE layout (``Annotations.txt``, split files, ``AVE/<VideoID>.mp4``), reader and writer.
* ``stavis``: the STAViS test-set layout (``video_frames``, ``video_audio``, ``audio_feature``).
* ``frames``: numerically sorted frame files, PyAV decoding to square RGB, the frame / spectrogram cache.
* ``transforms``: one shared crop / colour jitter per sample, ImageNet normalisation (torch).
* ``pseudo_gt``: where the pseudo-GT maps live (``<dir>/<video_id>/<frame:05d>.png``), read / write.
* ``datasets``: torch ``Dataset``s of every training stage (S/SA, ST/STA, S+/SA+/ST+, AudioSwitch,
  students).
* ``synth`` (+ ``synth_classes``, ``synth_audio``, ``synth_scene``, ``synth_render``, ``synth_io``): the
  synthetic audio-visual event set (``stanet-rt synth``).

Dependency direction: imports the core (``stanet_rt.{config,audio,errors,eval}``) only; must not
import ``stanet_rt.models``, ``stanet_rt.pipeline``, ``export``, ``engines`` or the CLI.
"""
