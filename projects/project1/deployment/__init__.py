"""Getting models into use: promotion (model_deployment) and scoring (batch_inference)."""
