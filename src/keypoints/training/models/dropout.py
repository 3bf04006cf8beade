"""One dropout knob for a whole network, or one rate per stage."""


def stage_rates(dropout: float | list[float], stages: int) -> list[float]:
    """A scalar applies everywhere (`model.dropout=0.4`); a list gives each stage its own rate."""
    if isinstance(dropout, (int, float)):
        return [float(dropout)] * stages
    rates = [float(r) for r in dropout]
    if len(rates) != stages:
        raise ValueError(f"model.dropout: expected one rate or {stages} rates, got {len(rates)}")
    return rates
