"""The SCAN command language (Lake & Baroni, ICML 2018) in code: its grammar, its interpretation, every command.

SCAN's phrase-structure grammar (the paper's Table 1). ``D[i]`` is the i-th child of a ``D`` node, which lets
``opposite``/``around`` sit *inside* a direction phrase: ``V -> D[1] opposite D[2]`` with ``D -> U left`` gives
``walk opposite left``::

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> D[1] opposite D[2] | D[1] around D[2] | D | U
    D -> U left | U right | turn left | turn right
    U -> walk | look | run | jump

The interpretation function maps a command to actions (``I_WALK I_LOOK I_RUN I_JUMP I_TURN_LEFT I_TURN_RIGHT``)::

    [[walk]] = I_WALK (likewise look, run, jump)     [[turn left]] = I_TURN_LEFT
    [[u left]] = I_TURN_LEFT [[u]]                    [[turn opposite left]] = I_TURN_LEFT I_TURN_LEFT
    [[u opposite left]] = [[turn opposite left]] [[u]]
    [[turn around left]] = I_TURN_LEFT x4             [[u around left]] = (I_TURN_LEFT [[u]]) x4
    (the same with right)
    [[x twice]] = [[x]] [[x]]     [[x thrice]] = [[x]] [[x]] [[x]]
    [[x1 and x2]] = [[x1]] [[x2]] [[x1 after x2]] = [[x2]] [[x1]]

The grammar yields 4 + 10 + 10 + 10 = 34 verb phrases, 102 ``S`` phrases and 102 + 2 * 102**2 = 20,910 commands,
exactly the commands of the official ``tasks.txt``; the tests check :func:`interpret` against every line of the
shared split files. SCAN is BSD-licensed; this module re-derives it from the paper, no data file needed.

>>> len(enumerate_commands())
20910
>>> interpret("jump around left twice after walk")[:4]
('I_WALK', 'I_TURN_LEFT', 'I_JUMP', 'I_TURN_LEFT')
"""

from __future__ import annotations

from functools import cache, lru_cache

from innerworks.errors import DataError

PRIMITIVES: tuple[str, ...] = ("walk", "look", "run", "jump")  # U
DIRECTIONS: tuple[str, ...] = ("left", "right")
MODIFIERS: tuple[str, ...] = ("opposite", "around")
REPEATS: dict[str, int] = {"twice": 2, "thrice": 3}
CONJUNCTIONS: tuple[str, ...] = ("and", "after")

#: Every input word, in a fixed order (used as the SCAN source vocabulary).
COMMAND_WORDS: tuple[str, ...] = (*PRIMITIVES, "turn", *DIRECTIONS, *MODIFIERS, *REPEATS, *CONJUNCTIONS)
#: Every output action, in a fixed order (used as the SCAN target vocabulary).
ACTIONS: tuple[str, ...] = ("I_WALK", "I_LOOK", "I_RUN", "I_JUMP", "I_TURN_LEFT", "I_TURN_RIGHT")

_PRIM_ACTION = {u: f"I_{u.upper()}" for u in PRIMITIVES}
_TURN_ACTION = {d: f"I_TURN_{d.upper()}" for d in DIRECTIONS}


def verb_phrases() -> list[tuple[str, ...]]:
    """All ``V`` phrases in grammar order: ``U``, then ``D``, then ``D[1] opposite D[2]``, then ``D[1] around D[2]``.

    >>> len(verb_phrases()), verb_phrases()[0], verb_phrases()[-1]
    (34, ('walk',), ('turn', 'around', 'right'))
    """
    heads = (*PRIMITIVES, "turn")  # D[1] is a U or "turn"
    d_nodes = [(u, d) for u in PRIMITIVES for d in DIRECTIONS] + [("turn", d) for d in DIRECTIONS]
    assert len(d_nodes) == 2 * len(heads)
    out: list[tuple[str, ...]] = [(u,) for u in PRIMITIVES]
    out += list(d_nodes)
    for mod in MODIFIERS:
        out += [(h, mod, d) for h, d in d_nodes]
    return out


def s_phrases() -> list[tuple[str, ...]]:
    """All ``S`` phrases: every ``V``, then every ``V twice``, then every ``V thrice``.

    >>> len(s_phrases())
    102
    """
    vs = verb_phrases()
    return vs + [(*v, "twice") for v in vs] + [(*v, "thrice") for v in vs]


@lru_cache(maxsize=1)
def _all_commands() -> tuple[str, ...]:
    ss = [" ".join(s) for s in s_phrases()]
    out = list(ss)
    for conj in CONJUNCTIONS:
        out += [f"{a} {conj} {b}" for a in ss for b in ss]
    return tuple(out)


def enumerate_commands() -> list[str]:
    """Every SCAN command the grammar generates (20,910), in a fixed grammar order, space-separated.

    >>> cmds = enumerate_commands(); len(cmds) == len(set(cmds)), cmds[0]
    (True, 'walk')
    """
    return list(_all_commands())


def _verb(words: tuple[str, ...], command: str) -> tuple[str, ...]:
    """[[V]] for a verb phrase of 1-3 words."""
    def bad(expected: str) -> DataError:
        return DataError(f"not a SCAN command: {command!r}: verb phrase {' '.join(words)!r}: expected {expected}")

    if len(words) == 1:
        if words[0] not in _PRIM_ACTION:
            raise bad("walk|look|run|jump")
        return (_PRIM_ACTION[words[0]],)
    head, direction = words[0], words[-1]
    if head not in _PRIM_ACTION and head != "turn":
        raise bad("walk|look|run|jump|turn first")
    if direction not in _TURN_ACTION:
        raise bad("left|right last")
    turn = _TURN_ACTION[direction]
    prim = () if head == "turn" else (_PRIM_ACTION[head],)
    if len(words) == 2:  # D -> U dir | turn dir
        return (turn, *prim)
    if len(words) == 3 and words[1] == "opposite":
        return (turn, turn, *prim)
    if len(words) == 3 and words[1] == "around":
        return (turn, *prim) * 4
    raise bad("'X dir', 'X opposite dir' or 'X around dir'")


def _s_phrase(words: tuple[str, ...], command: str) -> tuple[str, ...]:
    """[[S]]: a verb phrase optionally followed by twice/thrice."""
    if not words:
        raise DataError(f"not a SCAN command: {command!r}: empty phrase")
    if words[-1] in REPEATS:
        return _verb(words[:-1], command) * REPEATS[words[-1]] if len(words) > 1 else _verb(words, command)
    return _verb(words, command)


@cache
def _interpret(command: str) -> tuple[str, ...]:
    words = tuple(command.split())
    conj = [i for i, w in enumerate(words) if w in CONJUNCTIONS]
    if len(conj) > 1:
        raise DataError(f"not a SCAN command: {command!r}: at most one 'and'/'after' allowed")
    if not conj:
        return _s_phrase(words, command)
    i = conj[0]
    left, right = _s_phrase(words[:i], command), _s_phrase(words[i + 1:], command)
    return left + right if words[i] == "and" else right + left


def interpret(command: str) -> tuple[str, ...]:
    """SCAN's interpretation function: the action sequence of ``command``; raise :class:`DataError` if ungrammatical.

    >>> interpret("walk opposite left thrice")
    ('I_TURN_LEFT', 'I_TURN_LEFT', 'I_WALK', 'I_TURN_LEFT', 'I_TURN_LEFT', 'I_WALK', 'I_TURN_LEFT', 'I_TURN_LEFT', \
'I_WALK')
    >>> interpret("run and jump twice")
    ('I_RUN', 'I_JUMP', 'I_JUMP')
    >>> interpret("turn")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.DataError: not a SCAN command: 'turn': ...
    """
    if not isinstance(command, str):
        raise DataError(f"SCAN command must be a string, got {type(command).__name__}")
    return _interpret(" ".join(command.split()))


def is_command(command: str) -> bool:
    """True when ``command`` is generated by the SCAN grammar.

    >>> is_command("look around right and turn left"), is_command("left walk")
    (True, False)
    """
    try:
        interpret(command)
    except DataError:
        return False
    return True
