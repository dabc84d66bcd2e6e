"""
Average Directional Index (Wilder), which Nautilus lacks: it has DirectionalMovement (smoothed
+DM and -DM) but neither the directional indicators normalised by true range nor the ADX.

Wilder's definitions: TR, +DM, -DM from consecutive bars; each smoothed with Wilder's running
sum seeded by the sum of the first `period` values; +DI = 100 * S(+DM) / S(TR), likewise -DI;
DX = 100 * |+DI - -DI| / (+DI + -DI); ADX = mean of the first `period` DX values, then
ADX = (ADX * (period - 1) + DX) / period. Ready after 2 * period bars.
"""

from __future__ import annotations

from nautilus_trader.model.data import Bar


class AverageDirectionalIndex:
    def __init__(self, period: int = 14) -> None:
        if period < 1:
            raise ValueError(f"period must be positive, got {period}")
        self.period = period
        self.reset()

    def reset(self) -> None:
        self.value = 0.0
        self.plus_di = 0.0
        self.minus_di = 0.0
        self.initialized = False
        self._prev: tuple[float, float, float] | None = None  # high, low, close
        self._count = 0  # bars with a predecessor
        self._tr = self._pdm = self._mdm = 0.0
        self._dx_count = 0
        self._dx_sum = 0.0

    def handle_bar(self, bar: Bar) -> None:
        self.update_raw(bar.high.as_double(), bar.low.as_double(), bar.close.as_double())

    def update_raw(self, high: float, low: float, close: float) -> None:
        if self._prev is None:
            self._prev = (high, low, close)
            return
        prev_high, prev_low, prev_close = self._prev
        self._prev = (high, low, close)
        tr = max(high - low, abs(high - prev_close), abs(low - prev_close))
        up, down = high - prev_high, prev_low - low
        pdm = up if up > down and up > 0 else 0.0
        mdm = down if down > up and down > 0 else 0.0
        n = self.period
        self._count += 1
        if self._count <= n:
            self._tr += tr
            self._pdm += pdm
            self._mdm += mdm
            if self._count < n:
                return
        else:
            self._tr += tr - self._tr / n
            self._pdm += pdm - self._pdm / n
            self._mdm += mdm - self._mdm / n
        self.plus_di = 100.0 * self._pdm / self._tr if self._tr else 0.0
        self.minus_di = 100.0 * self._mdm / self._tr if self._tr else 0.0
        total = self.plus_di + self.minus_di
        dx = 100.0 * abs(self.plus_di - self.minus_di) / total if total else 0.0
        if self._dx_count < n:
            self._dx_count += 1
            self._dx_sum += dx
            if self._dx_count == n:
                self.value = self._dx_sum / n
                self.initialized = True
        else:
            self.value = (self.value * (n - 1) + dx) / n
