/**
 * How Loupe numbers and names features. A single dictionary's feature i is
 * `#i`. A transcoder set's (or CLT's) layers sit side by side: layer L's
 * feature i is number L · width + i, named `L3 #42`. The engine, the
 * extension and the webviews all name features through these two functions.
 */

export interface FeatureLayer {
  readonly layer: number | null;
  readonly layerIndex: number | null;
}

/** The layer and in-layer index of feature `index`, for a set with `layerWidth` features per layer (null: not a set). */
export function layerOfFeature(index: number, layerWidth: number | null): FeatureLayer {
  return layerWidth
    ? { layer: Math.floor(index / layerWidth), layerIndex: index % layerWidth }
    : { layer: null, layerIndex: null };
}

export function featureName(f: { readonly index: number } & FeatureLayer): string {
  return f.layer === null || f.layerIndex === null ? `#${f.index}` : `L${f.layer} #${f.layerIndex}`;
}
