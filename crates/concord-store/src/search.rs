//! The words of a message search, as every backend reads them.
//!
//! The user's text is never handed to a full-text engine as query syntax: it is cut
//! into words at every character that is not a letter or a digit, lowercased, and
//! the English stop words are dropped, as PostgreSQL's `plainto_tsquery('english', …)`
//! does; a backend then requires every remaining word, stemmed its own way. Text
//! with no word left (only stop words or punctuation) matches nothing.

/// PostgreSQL's English stop-word list (the Snowball list).
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "s",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// The words of `text` a search requires, in order, each once: lowercased, stop words
/// dropped. Empty when nothing but stop words and punctuation was typed.
pub fn search_terms(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let word = word.to_lowercase();
        if STOP_WORDS.binary_search(&word.as_str()).is_ok() || terms.contains(&word) {
            continue;
        }
        terms.push(word);
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_word_list_is_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn words_are_cut_at_punctuation_lowercased_and_stop_words_dropped() {
        assert_eq!(
            search_terms("The QUICK, brown-fox's \"jump\" (OR) *"),
            ["quick", "brown", "fox", "jump"]
        );
        assert_eq!(search_terms("Café naïve 42"), ["café", "naïve", "42"]);
        assert_eq!(search_terms("fox FOX fox"), ["fox"]);
        assert!(search_terms("the and of to").is_empty());
        assert!(search_terms("\"* ( ) : ^ -").is_empty());
    }
}
