"""Knowledge bases (kb_id → documents): chunking, embeddings in Triton, vector search."""
