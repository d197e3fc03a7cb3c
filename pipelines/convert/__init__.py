"""Table declarations and the conversion of a Firestore document to a typed row."""
