"""A :class:`~runlog.api.result.Result`'s columns as pandas, polars or Arrow, each built
by its library's own constructor from the column as it is kept (a list of numbers, a
run-length encoded column, an Arrow array): no row-by-row conversion in Python.

Imported only when a frame is asked for; each library only by the conversion to it.
"""

from __future__ import annotations

import itertools

from .columns import NAT, Column, Repeated, require

POLARS_TYPES = {"int": "Int64", "float": "Float64", "str": "String", "bool": "Boolean", "binary": "Binary",
                "null": "Null"}
ARROW_TYPES = {"int": "int64", "float": "float64", "str": "string", "bool": "bool_", "binary": "binary", "null": "null"}


# -- pandas ---------------------------------------------------------------------------


def to_pandas(columns: dict[str, Column], length: int):
    pd = require("pandas", "pandas")
    data = {name: _pandas_column(column, pd) for name, column in columns.items()}
    return pd.DataFrame(data, index=pd.RangeIndex(length), copy=False)


def _pandas_column(column: Column, pd):
    import numpy as np

    if column.is_arrow:
        return column.data.to_pandas()
    if column.kind == "time":
        ints = _numbers(column, NAT)
        moments = np.asarray(ints, dtype=np.int64).view(f"datetime64[{column.unit}]")
        return pd.DatetimeIndex(moments).tz_localize("UTC")
    if isinstance(column.data, Repeated):
        values = np.empty(len(column.data.values), dtype=object)
        values[:] = column.data.values
        return np.repeat(values, column.data.counts)
    has_null = None in column.data
    if column.kind == "float" or (column.kind == "int" and has_null):
        return np.array(column.data, dtype=np.float64)  # None -> NaN, as pandas has it
    if column.kind == "int" or (column.kind == "bool" and not has_null):
        return np.array(column.data, dtype=np.int64 if column.kind == "int" else bool)
    values = np.empty(len(column.data), dtype=object)
    values[:] = column.data
    return values


def _numbers(column: Column, null) -> list:
    values = column.data.expand() if isinstance(column.data, Repeated) else column.data
    return [null if v is None else v for v in values] if None in values else values


# -- polars ---------------------------------------------------------------------------


def to_polars(columns: dict[str, Column]):
    pl = require("polars", "polars")
    return pl.DataFrame([_polars_column(name, column, pl) for name, column in columns.items()])


def _polars_column(name: str, column: Column, pl):
    if column.is_arrow:
        return pl.Series(name, column.data)
    if isinstance(column.data, Repeated):
        kind = "int" if column.kind == "time" else column.kind
        values = pl.Series(name, column.data.values, dtype=getattr(pl, POLARS_TYPES[kind]))
        series = pl.select(pl.lit(values).repeat_by(pl.Series(column.data.counts, dtype=pl.UInt32))
                           .explode()).to_series().rename(name)
    else:
        kind = "int" if column.kind == "time" else column.kind
        series = pl.Series(name, column.data, dtype=getattr(pl, POLARS_TYPES[kind]))
    if column.kind == "time":
        series = series.cast(pl.Datetime(column.unit, "UTC"))
    return series


# -- Arrow ----------------------------------------------------------------------------


def to_arrow(columns: dict[str, Column]):
    pa = require("pyarrow", "arrow")
    return pa.table({name: _arrow_column(column, pa) for name, column in columns.items()})


def _arrow_column(column: Column, pa):
    if column.is_arrow:
        return column.data
    arrow_type = pa.timestamp(column.unit, "UTC") if column.kind == "time" else getattr(pa, ARROW_TYPES[column.kind])()
    if isinstance(column.data, Repeated):
        import pyarrow.compute as pc

        ends = pa.array(list(itertools.accumulate(column.data.counts)), pa.int64())
        encoded = pa.RunEndEncodedArray.from_arrays(ends, pa.array(column.data.values, arrow_type))
        return pc.run_end_decode(encoded)
    return pa.array(column.data, arrow_type)
