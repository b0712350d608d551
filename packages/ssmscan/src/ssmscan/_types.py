"""Named array shapes used across ssmscan's public API (jaxtyping aliases).

Letters follow S5: ``T`` time steps, ``H`` model width, ``P`` state size (the number of complex
states the layer actually carries), ``*batch`` any leading dims the caller keeps.
"""

from typing import TypeAlias

from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Num

Sequence: TypeAlias = Float[Array, "T H"]
Step: TypeAlias = Float[Array, " H"]
States: TypeAlias = Complex[Array, "T P"]
State: TypeAlias = Complex[Array, " P"]
Resets: TypeAlias = Bool[ArrayLike, " T"] | Num[ArrayLike, " T"]
Reset: TypeAlias = Bool[ArrayLike, ""] | Num[ArrayLike, ""]
