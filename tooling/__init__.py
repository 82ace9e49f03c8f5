"""The tooling layer: what sits above the plugins and may import them.

The command line (``cli``, ``commands/``), property checks for op and cell authors
(``testing``, ``testing_cells``, ``testing_report``, ``testing_strategies``, the pytest
plugin), the BPTT lens (``viz``, ``step_gradients``, ``explain``, ``bptt_derivations``), the
toy tasks (``tasks``, ``datasets``, ``sequence_task``), the applications (``forecasting``,
``forecast_baselines``, ``forecast_chart``; ``sentiment``, ``sentiment_view``,
``bag_of_words``) and the way out to PyTorch (``interop``). The engine (``tinygrad_lstm/``)
never imports anything here.

The modules users import keep their short paths: ``tinygrad_lstm.testing`` is this
package's ``testing`` (the same module object), and likewise ``viz``, ``tasks``,
``datasets``, ``explain`` and ``interop``.
"""
