"""Count how often each word appears in a text, and show the most common ones.

Open the Loupe sidebar (the magnifier in the activity bar) and click any token:
the Token Inspector lists the SAE features active on it and the model's guesses
for the next token. Click a feature to see where else in the file it fires.
"""

from collections import Counter
import re
import unicodedata

# Words are runs of letters, digits and apostrophes, in any script.
WORD = re.compile(r"[\w']+", re.UNICODE)

GREETING = "Hello, world! 👋 こんにちは、世界 🌏 你好，世界"


def normalize(text: str) -> str:
    """Fold case and compose accents, so "Café" and "café" count as one word."""
    return unicodedata.normalize("NFC", text).casefold()


def word_counts(text: str) -> Counter[str]:
    """Return a Counter of the words in `text`."""
    return Counter(WORD.findall(normalize(text)))


def top_words(text: str, n: int = 3) -> list[tuple[str, int]]:
    # Ties keep the order in which the words first appeared.
    return word_counts(text).most_common(n)


if __name__ == "__main__":
    sample = GREETING + " Hello again, world."
    for word, count in top_words(sample):
        print(f"{word!r:>12} {count}")
