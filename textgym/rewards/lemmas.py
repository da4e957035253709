"""Lemma keys: English words that match whatever their inflection, for concept coverage.

:func:`lemma_keys` gives a word's candidate base forms, from rules for English inflections
(plural -s/-es/-ies, -ed, -ing, with silent e and doubled consonants) and a table of
irregular forms ("ran" -> run, "mice" -> mouse), so that "dog" matches "dogs", "run"
matches "running" and "ran", and "make" matches "making" and "made", while "bite" does not
match "bit". It needs no data and no download. It is not a full lemmatizer: derived words
stay apart ("teacher" is not "teach"), and a few rare forms miss ("agreed" is not "agree").
"""

from __future__ import annotations

from functools import lru_cache

# irregular inflections, "base form form ..." separated by ";". Forms whose common sense is
# another word ("bit", "ground", "rose", "wound") are left out: they would match too much
IRREGULAR = """
be am is are was were been; have has had; do does did done; go goes went gone; run ran; sit sat; stand stood;
eat ate eaten; drink drank drunk; ride rode ridden; throw threw thrown; catch caught; hold held; fly flew flown;
swim swam swum; give gave given; take took taken; make made; see saw seen; lie lay lain lying; tie tying;
die dying; fall fell fallen; write wrote written; drive drove driven; sing sang sung; begin began begun;
bring brought; buy bought; think thought; teach taught; fight fought; seek sought; come came; become became;
get got gotten; forget forgot forgotten; wear wore worn; tear tore torn; swear swore sworn; break broke broken;
speak spoke spoken; choose chose chosen; freeze froze frozen; steal stole stolen; wake woke woken;
weave wove woven; grow grew grown; know knew known; blow blew blown; draw drew drawn; show shown; beat beaten;
feed fed; lead led; flee fled; breed bred; bleed bled; feel felt; kneel knelt; keep kept; sleep slept;
sweep swept; leap leapt; leave left; meet met; lose lost; send sent; spend spent; lend lent; bend bent;
build built; sell sold; tell told; find found; hang hung; dig dug; stick stuck; strike struck; swing swung;
sting stung; cling clung; spin spun; win won; shine shone; shoot shot; light lit; slide slid;
hide hid hidden; bite bitten; rise risen; forbid forbade forbidden; shake shook shaken; sink sank sunk;
shrink shrank shrunk; stink stank stunk; ring rang rung; spring sprang sprung; pay paid; say said; lay laid;
hear heard; mean meant; deal dealt; understand understood; spit spat; sew sewn; mow mown; dream dreamt;
burn burnt; learn learnt;
man men; woman women; child children; foot feet; tooth teeth; mouse mice; goose geese; person people; ox oxen;
knife knives; wife wives; life lives; leaf leaves; elf elves; wolf wolves; shelf shelves; loaf loaves;
half halves; calf calves; thief thieves; scarf scarves; hoof hooves; cactus cacti; fungus fungi;
medium media; datum data; bacterium bacteria; criterion criteria; phenomenon phenomena
"""


def _irregular_bases() -> dict[str, tuple[str, ...]]:
    bases: dict[str, tuple[str, ...]] = {}
    for entry in IRREGULAR.split(";"):
        base, *forms = entry.split()
        for form in forms:
            bases[form] = (*bases.get(form, ()), base)
    return bases


IRREGULAR_BASES = _irregular_bases()
_VOWELS = frozenset("aeiouy")
_ES_PLURALS = ("se", "xe", "ze", "che", "she", "oe")  # boxes, dishes, tomatoes: -es, not -e + -s


def _bases(word: str) -> set[str]:
    """Candidate base forms of a lowercase word: the word, without a final -s (and the -e of
    a plural -es), and without -ing or -ed: "making" -> make, "running" -> run, "jumped" ->
    jump, "boxes" -> box, "flies" -> fly. English spelling leaves some doubt, so a word may
    have several ("used" -> us, use); a base word is itself ("bite" is not "bit")."""
    bases = {word}
    if len(word) > 4 and word.endswith(("ies", "ied")):
        bases.add(word[:-3] + "y")
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):  # not glass, bus, focus
        word = word[:-1]
        bases.add(word)
        if word.endswith(_ES_PLURALS):
            bases.add(word[:-1])
    for suffix in ("ing", "ed"):
        stem = word[: -len(suffix)]
        if not word.endswith(suffix) or not _VOWELS.intersection(stem) or word.endswith("eed"):
            continue  # not bring, thing, bed, red, need, seed
        if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in _VOWELS:
            bases.update((stem, stem[:-1], stem + "e"))  # falling -> fall, running -> run, silhouetted
        elif _one_syllable_cvc(stem):
            bases.add(stem + "e")  # making -> make: a base "mak" would write "makking"
        else:
            bases.update((stem, stem + "e"))  # jumping -> jump, dancing -> dance
        break
    return bases


def _one_syllable_cvc(stem: str) -> bool:
    """Whether ``stem`` is one syllable ending consonant-vowel-consonant (not w, x, y):
    such a base doubles its consonant before -ing and -ed (run -> running)."""
    if len(stem) < 3 or stem[-1] in _VOWELS or stem[-1] in "wx" or stem[-2] not in _VOWELS or stem[-3] in _VOWELS:
        return False
    syllables = sum(1 for i, c in enumerate(stem) if c in _VOWELS and (i == 0 or stem[i - 1] not in _VOWELS))
    return syllables == 1


@lru_cache(maxsize=65536)
def lemma_keys(word: str) -> frozenset[str]:
    """The keys under which ``word`` (one lowercase token) matches another word; two words
    match when their keys meet. The keys are its candidate base forms, and for an
    irregular form its base, also after a prefix of three letters or more ("firemen"
    meets "fireman", "overgrown" meets "overgrow")."""
    keys = _bases(word)
    for start in (0, *range(3, len(word) - 2)):
        keys.update(word[:start] + base for base in IRREGULAR_BASES.get(word[start:], ()))
    return frozenset(keys)
